"""Training experiments: PEFT LoRA/DoRA adapters in resumable run folders (README.md, 'Training').

`status` and `launch` stay free of torch so the daemon can use them; `loop` does the heavy work.
"""
