"""The admin API's time bounds and the stages that make a 202 (the routes, the API, its OpenAPI document)."""

# Azure answers an HTTP trigger within 230 s at most (the load balancer's idle timeout).
# The API's rotation waits at most this long for a new secret to propagate ...
ROTATE_VERIFY_DEADLINE = 150.0
# ... and answers by this time whatever the run is doing (it goes on in the process);
# then queuing the resume takes at most 10 s more (AdminApi.queue_resume): 210 s,
# leaving the token check (keys cached; a fetch times out in 10 s) within 230 s.
ROTATE_ANSWER_WITHIN = 200.0
POLL_SECONDS = 30  # the Retry-After of a 202: how soon a client should ask the status URL
# The stages of a rotation still moving on its own (a 202: follow it at the status URL) ...
MOVING = ("pending", "verified", "handed-off")
RUNNING = "running"  # ... and the API's own word: the run goes on after the answer
