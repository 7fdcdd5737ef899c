"""The serving floor: what a POST /score costs with no scoring at all.

A BentoML service with the real request contract (the same request models, so the same
JSON parsing and validation) whose /score answers a response recorded from the real
service for the same number of accounts (`<n>.json` in RADAR_FLOOR_RESPONSES). Its latency is what BentoML, uvicorn, the
loopback socket, validation and the client cost for that payload; bench/serve_bench.py
starts it next to the real service so the scoring overhead can be told apart from the
framework's. Not part of the product.

    RADAR_CONFIG_FILE=radar.toml RADAR_FLOOR_RESPONSES=responses/ bentoml serve floor_service:Floor
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")

import bentoml
from starlette.responses import Response

from radar.settings import load_settings
from serving.scoring.schemas import ScoreResponse, request_models

REQUEST = request_models(load_settings())
ANSWERS = {int(p.stem): p.read_bytes() for p in Path(os.environ["RADAR_FLOOR_RESPONSES"]).glob("*.json")}


@bentoml.service(name="radar_floor", workers=int(os.environ.get("RADAR_FLOOR_WORKERS", "2")))
class Floor:
    @bentoml.api(route="/score", input_spec=REQUEST.request, output_spec=ScoreResponse)
    def score(self, accounts: list) -> Response:
        """Validate the accounts like the real service, then answer the recorded response."""
        answer = ANSWERS.get(len(accounts)) or ANSWERS[max(ANSWERS)]
        return Response(answer, media_type="application/json")
