"""The intake baseline: a bare FastAPI endpoint taking the gateway's own body model (NewTask)
and answering 202, served by uvicorn as the services are (one process, no access log).

``python -m relay_devkit.bench.baseline_app PORT``
"""

from __future__ import annotations

import sys
import uuid

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from gateway.models import NewTask


def create_app() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/tasks", status_code=202)
    async def submit(body: NewTask) -> JSONResponse:
        return JSONResponse(
            {"id": str(uuid.uuid4()), "status": "queued", "prompt": body.prompt}, status_code=202
        )

    return app


if __name__ == "__main__":
    uvicorn.run(
        create_app(), host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False
    )
