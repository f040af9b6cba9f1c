"""JSON Schema files for every message on every topic, generated from the models."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from sla_stream.core.models import WIRE_MODELS
from sla_stream.core.terms import ContractRecord

SCHEMA_MODELS: dict[str, type[BaseModel]] = {**WIRE_MODELS, "contract-record": ContractRecord}


def render_schemas() -> dict[str, str]:
    """File name -> file text, deterministic (sorted keys, trailing newline)."""
    files = {}
    for name, model in sorted(SCHEMA_MODELS.items()):
        schema = model.model_json_schema(mode="serialization")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"sla-stream/{name}.schema.json"
        files[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return files


def export_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_schemas().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
