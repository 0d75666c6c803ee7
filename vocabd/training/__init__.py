"""Training experiments: PEFT LoRA/DoRA adapters in resumable run folders (docs/training.md).

`status` and `launch` stay free of torch so the daemon can use them; `loop` does the heavy work.
"""
