"""`vocabd export`: the personal model (base + merged adapter) for other runtimes: hf, onnx, moonshine-cpp."""
