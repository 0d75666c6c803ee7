"""General speech for every user: the default replay pool and safety yardstick (docs/general-speech.md).

`pool.ensure_pool` picks one for a workspace: the user's own (`[train] replay`, `data/safety_eval.jsonl`),
else a small real set from the Hugging Face Hub cached in the user cache (`hub`), else speech vocabd makes
itself from its shipped sentences in many synthetic voices (`synthetic`). Either way the yardstick is a
held-out part in voices or speakers the replay never uses, with texts the replay never says.
"""
