"""Training experiments: PEFT LoRA/DoRA adapters in resumable run folders (DESIGN.md §4-§5, §7).

`status` and `launch` stay free of torch so the daemon can use them; `loop` does the heavy work.
"""
