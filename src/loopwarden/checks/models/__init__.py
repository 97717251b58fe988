"""Model-file checks: find payloads in model files without loading them.

``scanner.scan_paths`` is the entry point; ``detect`` recognises formats by content; one module per container
(``zipfile_``, ``torch``, ``numpy_``, ``keras``, ``onnx``, ``safetensors``, ``gguf``, ``archives``);
``pickle_vm``
analyses pickle streams symbolically. Nothing here imports heavy libraries at module import time.
"""
