"""Models, recipes and optimized artifacts: registered once by content hash, referenced by runs and exports."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.errors import StorageError
from storage.failures import translate_os_error
from storage.records import ArtifactInfo, ExportedFile, ModelInfo
from storage.schema import ArtifactRow, ExportRow, ModelRow, RecipeRow

if TYPE_CHECKING:
    from storage.connection import Connection


class Catalog:
    """Get-or-create by hash, so re-opening the same file or re-running the same recipe reuses its row."""

    def __init__(self, database: Connection):
        self._database = database

    def register_model(self, model: ModelInfo) -> int:
        """The id of the model with this sha256, registering it (first seen now) if it is new."""
        def work(session: Session) -> int:
            existing = session.scalar(select(ModelRow.id).where(ModelRow.sha256 == model.sha256))
            if existing is not None:
                return existing
            row = ModelRow(sha256=model.sha256, path=model.path, format=model.format, size_bytes=model.size_bytes,
                           io_signature=dict(model.io_signature), first_seen=datetime.now(UTC))
            session.add(row)
            session.flush()
            return row.id

        return self._database.transact(work, write=True, where=f"registering model {model.path}")

    def register_recipe(self, canonical_json: str) -> int:
        """The id of this recipe; `canonical_json` must already be canonical (sorted keys, fixed separators)."""
        digest = hashlib.sha256(canonical_json.encode("utf-8")).hexdigest()

        def work(session: Session) -> int:
            existing = session.scalar(select(RecipeRow.id).where(RecipeRow.sha256 == digest))
            if existing is not None:
                return existing
            row = RecipeRow(sha256=digest, canonical_json=canonical_json, created_at=datetime.now(UTC))
            session.add(row)
            session.flush()
            return row.id

        return self._database.transact(work, write=True, where="registering a recipe")

    def register_artifact(self, artifact: ArtifactInfo) -> int:
        """The id of the artifact with this content, parent and recipe; its fidelity report is updated if given."""
        def work(session: Session) -> int:
            row = session.scalar(select(ArtifactRow).where(
                ArtifactRow.sha256 == artifact.sha256,
                ArtifactRow.parent_model_id == artifact.parent_model_id,
                ArtifactRow.recipe_id == artifact.recipe_id,
            ))
            if row is None:
                row = ArtifactRow(parent_model_id=artifact.parent_model_id, recipe_id=artifact.recipe_id,
                                  path=artifact.path, sha256=artifact.sha256, size_bytes=artifact.size_bytes,
                                  fidelity=artifact.fidelity, created_at=datetime.now(UTC))
                session.add(row)
            elif artifact.fidelity is not None:
                row.fidelity = artifact.fidelity
            session.flush()
            return row.id

        return self._database.transact(work, write=True, where=f"registering artifact {artifact.path}")

    def model(self, model_id: int) -> ModelInfo | None:
        def work(session: Session) -> ModelInfo | None:
            row = session.get(ModelRow, model_id)
            if row is None:
                return None
            return ModelInfo(path=row.path, sha256=row.sha256, format=row.format, size_bytes=row.size_bytes,
                             io_signature=dict(row.io_signature))

        return self._database.transact(work, write=False, where=f"reading model {model_id}")

    def artifact(self, artifact_id: int) -> ArtifactInfo | None:
        def work(session: Session) -> ArtifactInfo | None:
            row = session.get(ArtifactRow, artifact_id)
            if row is None:
                return None
            return ArtifactInfo(parent_model_id=row.parent_model_id, recipe_id=row.recipe_id, path=row.path,
                                sha256=row.sha256, size_bytes=row.size_bytes, fidelity=row.fidelity)

        return self._database.transact(work, write=False, where=f"reading artifact {artifact_id}")

    def recipe(self, recipe_id: int) -> str | None:
        """The canonical JSON of a stored recipe, so an artifact's bundle can carry the exact recipe that made it."""
        def work(session: Session) -> str | None:
            row = session.get(RecipeRow, recipe_id)
            return None if row is None else row.canonical_json

        return self._database.transact(work, write=False, where=f"reading recipe {recipe_id}")

    def record_artifact_export(self, artifact_id: int, path: str | os.PathLike[str], file_format: str
                               ) -> ExportedFile:
        """Records a deployment bundle (or other file) written from an artifact, hashing it as it is now."""
        target = Path(path).absolute()
        try:
            digest, size = _sha256_of(target)
        except OSError as error:
            raise translate_os_error(error, where=f"reading the exported file {target}") from error

        def work(session: Session) -> None:
            if session.get(ArtifactRow, artifact_id) is None:
                raise StorageError(f"There is no artifact {artifact_id} in {self._database.display_name}.")
            session.add(ExportRow(artifact_id=artifact_id, path=str(target), format=file_format, sha256=digest,
                                  size_bytes=size, created_at=datetime.now(UTC)))

        self._database.transact(work, write=True, where=f"recording the export of artifact {artifact_id}")
        return ExportedFile(None, str(target), file_format, digest, size)


def _sha256_of(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size
