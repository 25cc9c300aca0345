"""Typed failures a user can act on.

The message of each error is shown to the user as it is (one line in the CLI, a
dialog in the GUI), so it names the file, input or device at fault and says what
to do about it.
"""


class EngineError(Exception):
    """Base of every engine failure caused by input, files or the machine."""


class ModelLoadError(EngineError):
    """A model file could not be opened."""


class ModelNotFoundError(ModelLoadError):
    pass


class UnsupportedModelError(ModelLoadError):
    """The file is readable but not a format (or feature) the studio runs."""


class CorruptModelError(ModelLoadError):
    """The file claims a known format but its bytes are damaged or truncated."""


class InvalidModelError(ModelLoadError):
    """The file parses but the model is not valid (e.g. it fails the ONNX checker)."""


class UntrustedModelError(ModelLoadError):
    """Loading would unpickle arbitrary objects, which can run code."""


class InputError(EngineError):
    """Inputs (shapes, dims, .npz files) do not fit the model."""


class ShapeMismatchError(InputError):
    pass


class DeviceUnavailableError(EngineError):
    pass


class BackendError(EngineError):
    """The runtime (ONNX Runtime, PyTorch) failed to prepare or run the model."""


def first_line(error: BaseException) -> str:
    """The first line of a library's error message, for a one-line report (the chain keeps the rest)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class RecipeError(EngineError):
    """An optimization recipe names an unknown option or a value outside its allowed range."""


class CalibrationDataError(InputError):
    """Calibration or accuracy data (.npz, folder of .npy/.npz) does not fit the model."""


class OptimizationError(EngineError):
    """An optimization pass could not run on this model, or failed while running."""


class OptimizationCancelled(EngineError):
    """The user stopped an optimization; nothing was written to the output path."""
