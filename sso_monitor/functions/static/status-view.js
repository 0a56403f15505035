/*
 * The status page's sign-in (GET /api/status/view): MSAL.js signs the person in with
 * Microsoft (authorization code + PKCE, by redirect), then the page asks the admin API
 * for the status report (GET /api/status/page) with the access token and shows it.
 * The page holds no data of its own: what the person sees is what the API let them see
 * (SsoMonitor.Read). Text from outside goes in as text (textContent), never as markup;
 * the report is the server's own escaped HTML, parsed inertly (DOMParser) and imported.
 * sso_monitor/functions/status_view.py serves this file; docs/status-page.md explains it.
 */
"use strict";

(function () {
  const settings = document.body.dataset;
  const state = document.getElementById("state");
  const report = document.getElementById("report");
  const who = document.getElementById("who");
  const signIn = document.getElementById("sign-in");
  const signOut = document.getElementById("sign-out");
  const reload = document.getElementById("reload");
  const request = { scopes: [settings.scope] };
  // Set before the automatic redirect to Microsoft: back here without an account, the
  // page offers the button instead of redirecting again (no loop).
  const TRIED = "sso-monitor-status-sign-in-tried";
  const here = window.location.origin + window.location.pathname;

  const app = new msal.PublicClientApplication({
    auth: {
      clientId: settings.clientId,
      authority: settings.authority,
      knownAuthorities: [new URL(settings.authority).host],
      redirectUri: here,
      postLogoutRedirectUri: here,
    },
    cache: { cacheLocation: "sessionStorage" },
  });

  function say(text, problem) {
    state.textContent = text;
    state.hidden = !text;
    state.className = problem ? "problem" : "";
  }

  function describe(error) {
    if (!error) return "unknown error";
    const code = error.errorCode || error.name || "error";
    const detail = error.errorMessage || "";
    return detail ? code + ": " + detail : code;
  }

  function interactionNeeded(error) {
    return (
      error instanceof msal.InteractionRequiredAuthError ||
      ["interaction_required", "login_required", "consent_required", "no_tokens_found", "refresh_token_expired", "monitor_window_timeout"].includes(error && error.errorCode)
    );
  }

  async function accessToken(account) {
    try {
      return (await app.acquireTokenSilent({ scopes: request.scopes, account: account })).accessToken;
    } catch (error) {
      if (!interactionNeeded(error)) throw error;
      await app.acquireTokenRedirect({ scopes: request.scopes, account: account });
      return null; // the page is leaving for Microsoft's sign-in
    }
  }

  function render(html) {
    const page = new DOMParser().parseFromString(html, "text/html");
    const style = page.querySelector("style");
    if (style) {
      const own = document.createElement("style");
      own.textContent = style.textContent;
      document.head.appendChild(own);
    }
    report.replaceChildren(...Array.from(page.body.childNodes, (node) => document.importNode(node, true)));
    if (page.title) document.title = page.title;
  }

  async function load(account) {
    say("Loading the status report\u2026");
    const token = await accessToken(account);
    if (!token) return;
    const answer = await fetch(settings.report, { headers: { Authorization: "Bearer " + token }, cache: "no-store", credentials: "omit" });
    if (answer.ok) {
      render(await answer.text());
      say("");
      return;
    }
    let message = "";
    try {
      message = (await answer.json()).error.message || "";
    } catch (ignored) {
      message = "";
    }
    report.replaceChildren();
    if (answer.status === 403) {
      say(
        account.username +
          " is signed in but does not hold the SsoMonitor.Read app role of the SSO Monitor admin API, so the status cannot be shown. " +
          "Ask an administrator to assign it: Microsoft Entra admin center, Enterprise applications, the SSO Monitor admin API, Users and groups, " +
          "Add user/group, role SsoMonitor.Read. Then sign out and sign in again.",
        true,
      );
    } else if (answer.status === 401) {
      say("The admin API did not accept the sign-in (" + message + "). Sign out and sign in again.", true);
    } else if (answer.status === 429) {
      say("Too many requests for now: try again in " + (answer.headers.get("Retry-After") || "a few") + " seconds.", true);
    } else {
      say("The status report could not be loaded (HTTP " + answer.status + (message ? ": " + message : "") + ").", true);
    }
  }

  function failed(error) {
    const text = describe(error);
    const hint = text.includes("AADSTS9002326")
      ? " The page's address is registered under the Web platform of the admin API's app registration: register " +
        here + " as a Single-page application redirect URI instead (Authentication, Add a platform), and remove it from Web."
      : "";
    say("The status page could not sign you in: " + text + hint, true);
    signIn.hidden = false;
  }

  async function main() {
    await app.initialize();
    let result = null;
    try {
      result = await app.handleRedirectPromise({ navigateToLoginRequestUrl: false });
    } catch (error) {
      sessionStorage.setItem(TRIED, "1");
      failed(error);
      return;
    }
    const account = (result && result.account) || app.getAllAccounts()[0];
    if (!account) {
      if (sessionStorage.getItem(TRIED)) {
        say("Sign in with Microsoft to see the status of the SmartTrace sign-ins.");
        signIn.hidden = false;
        return;
      }
      sessionStorage.setItem(TRIED, "1");
      say("Signing you in with Microsoft\u2026");
      await app.loginRedirect(request);
      return;
    }
    sessionStorage.removeItem(TRIED);
    app.setActiveAccount(account);
    who.textContent = "Signed in as " + (account.name ? account.name + " (" + account.username + ")" : account.username);
    who.hidden = signOut.hidden = reload.hidden = false;
    await load(account);
  }

  signIn.addEventListener("click", () => app.loginRedirect(request).catch(failed));
  signOut.addEventListener("click", () => app.logoutRedirect({ account: app.getActiveAccount() }).catch(failed));
  reload.addEventListener("click", () => load(app.getActiveAccount()).catch(failed));
  main().catch(failed);
})();
