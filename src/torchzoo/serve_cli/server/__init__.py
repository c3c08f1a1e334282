"""``torchzoo serve``: the runtime's predictors over HTTP, speaking the Open Inference Protocol (KServe v2
REST, with the binary tensor extension) and KServe v1 for raw inputs. Imports the runtime and the web stack
(starlette, uvicorn, prometheus_client), never torch."""
