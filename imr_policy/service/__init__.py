"""The HTTP service (`imr-policy serve`; the optional `service` extra: Starlette and uvicorn).

    app.py        the ASGI application: routes, problem responses, reload, the decision log
    pool.py       worker processes that evaluate; a crashed or hung worker is replaced
    worker.py     one worker: parses the body, validates, evaluates, builds the log record
    wire.py       length-prefixed frames between the server and its workers
    problems.py   RFC 9457 problem documents
    openapi.py    the OpenAPI document, built from schemas/case.schema.json and decision.schema.json
    policyset.py  a private snapshot of the rule files, so every worker loads the same policy set

The server process never parses or evaluates a case: untrusted bytes go to a worker, which can be
killed and replaced without touching anything else. Only `app.py` imports Starlette.
"""
