"""What every section of the configuration schema shares (:mod:`gauntlet.config.schema`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import JsonDict

# Marks a field whose value is never printed (``gauntlet config show`` masks it).
SECRET: JsonDict = {"secret": True}


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)
