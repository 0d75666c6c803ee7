import json
import math
import subprocess
import sys
from dataclasses import replace

import pytest

from tiny import build_tiny_tokenizer, speech_wav
from vocabd.asr.biasing import JargonBias, TokenTrie, configured_decoding, term_variants, with_bias
from vocabd.asr.labels import DECODER_START_ID
from vocabd.asr.model import load_asr
from vocabd.asr.transcribe import transcribe
from vocabd.audio import load_audio
from vocabd.config import BiasConfig, Config
from vocabd.jargon import Term


@pytest.fixture(scope="module")
def tokenizer():
    return build_tiny_tokenizer()


def ids(tokenizer, pieces: str) -> list[int]:
    return tokenizer.convert_tokens_to_ids(list(pieces))


def test_trie_shares_prefixes_and_knows_whole_terms():
    trie = TokenTrie([[5, 6, 7], [5, 6, 9], [5]])
    assert trie.depth == 3 and set(trie.walk([5, 6]).children) == {7, 9}
    assert [5, 6, 7] in trie and [5] in trie and [5, 6] not in trie
    assert trie.walk([6]) is None and trie.walk([]) is trie.root


def test_term_variants_at_a_word_start_and_bare(tokenizer):
    spaced, bare = term_variants(tokenizer, "kubectl")
    assert tokenizer.convert_ids_to_tokens(spaced) == list("▁kubectl")
    assert bare == spaced[1:]
    spaced, bare = term_variants(tokenizer, "pound key")
    assert tokenizer.convert_ids_to_tokens(bare) == list("pound▁key")


def test_bonus_grows_with_depth_and_only_continues_the_term(tokenizer):
    bias = JargonBias(tokenizer, ["kubectl"], boost=2.0, start_share=0.5)
    u, b = ids(tokenizer, "ub")
    after_k = bias.bonuses(ids(tokenizer, "▁k"))
    after_ku = bias.bonuses(ids(tokenizer, "▁ku"))
    assert after_k[u] == pytest.approx(2.0 * (1 + 0.6931471805599453))  # depth 2: "▁", "k"
    assert after_ku[b] > after_k[u] and b not in after_k
    space = ids(tokenizer, "▁")[0]
    assert after_k[space] == pytest.approx(1.0)  # starting a term: half the boost
    assert u not in bias.bonuses(ids(tokenizer, "▁xk"))  # never inside a word
    assert bias.bonuses(ids(tokenizer, "▁(k"))[u] == pytest.approx(2.0)  # bare after a symbol, depth 1


def test_a_term_left_half_written_gives_its_bonus_back(tokenizer):
    import torch

    bias = JargonBias(tokenizer, ["kubectl"], boost=2.0, start_share=0.5)
    b, x, space = (ids(tokenizer, c)[0] for c in ("b", "x", "▁"))

    def net(prefix: str) -> torch.Tensor:  # what the processor adds to each next token after `prefix`
        return bias(torch.tensor([[DECODER_START_ID, *ids(tokenizer, prefix)]]), torch.zeros(1, len(tokenizer)))[0]

    collected = 1.0 + 2.0 + 2.0 * (1 + math.log(2))  # "▁" (a start), "k" (depth 1), "u" (depth 2)
    after_ku = net("▁ku")
    assert after_ku[x].item() == pytest.approx(-collected)  # leaving the term: its bonus taken back
    assert after_ku[b].item() == pytest.approx(2.0 * (1 + math.log(3)))  # going on: the next bonus
    assert after_ku[space].item() == pytest.approx(1.0 - collected)  # another term's start
    after_term = net("▁kubectl")
    assert after_term[x].item() == 0.0 and after_term[space].item() == pytest.approx(1.0)  # a finished term keeps it
    repeat = net("▁kubectl▁kubect")
    l = ids(tokenizer, "l")[0]
    assert repeat[x].item() < 0 and repeat[l].item() == pytest.approx(repeat[x].item())  # again: it earns nothing


def test_the_bias_writes_said_forms_as_the_terms(tokenizer):  # the rules themselves: test_said.py
    bias = JargonBias(tokenizer, ["k8s", "CUDA", "json"], boost=2.0)
    assert bias.describe()["said_forms"] == 4  # kubernetes, koober netties, cuda, coodah
    assert bias.rewrite("Kubernetes on cuda.") == "k8s on CUDA."


def test_a_said_form_is_a_way_to_finish_the_term(tokenizer):
    import torch

    bias = JargonBias(tokenizer, [Term("k8s", "kubernetes"), "kubectl"], boost=2.0, start_share=0.5)
    e, r, c = (ids(tokenizer, ch)[0] for ch in "erc")
    after_kube = bias.bonuses(ids(tokenizer, "▁kube"))
    assert r in after_kube and c in after_kube  # "kubernetes" and "kubectl" both go on
    assert e in bias.bonuses(ids(tokenizer, "▁Kubern"))  # as the model may case it

    def net(prefix: str) -> torch.Tensor:
        return bias(torch.tensor([[DECODER_START_ID, *ids(tokenizer, prefix)]]), torch.zeros(1, len(tokenizer)))[0]

    x = ids(tokenizer, "x")[0]
    assert net("▁kubernetes")[x].item() == 0.0  # finished: its bonus kept
    assert net("▁kubernetes▁kubernete")[x].item() < 0  # the same term again earns nothing


def collected(tokenizer, bias: JargonBias, text: str) -> float:
    """What a hypothesis that writes `text` holds afterwards: the processor's net bonus for each of its tokens."""
    import torch

    tokens = ids(tokenizer, text)
    total = 0.0
    for i, token in enumerate(tokens):
        scores = bias(torch.tensor([[DECODER_START_ID, *tokens[:i]]]), torch.zeros(1, len(tokenizer)))
        total += scores[0, token].item()
    return total


def test_terms_that_start_alike_keep_the_same_bonus(tokenizer):
    def holds(terms: list[str], text: str) -> float:
        return collected(tokenizer, JargonBias(tokenizer, terms, boost=2.0, start_share=0.5), text)

    short = holds(["k8s"], "▁k8s")
    assert holds(["kubectl"], "▁kubectl") > short  # alone, the longer term collects more
    assert holds(["k8s", "kubectl"], "▁kubectl") == pytest.approx(short)  # beside a shorter one, no more than it
    assert holds(["k8s", "kubectl"], "▁k8s") == pytest.approx(short)


def test_beam_search_decodes_with_the_bias(tiny_model, tmp_path):
    asr = with_bias(load_asr(tiny_model), ["kubectl"], boost=40.0)
    audio = load_audio(speech_wav(tmp_path / "k.wav", "open cube control now"))
    texts = transcribe(replace(asr, beams=4), [audio, audio[: len(audio) // 2]])
    assert "kubectl" in texts[0] and texts[0].count("kubectl") == 1


def test_processor_raises_the_term_probability_in_the_model(tiny_model):
    import torch

    asr = load_asr(tiny_model)
    bias = JargonBias(asr.tokenizer, ["kubectl"], boost=3.0)
    audio = torch.from_numpy(load_audio(speech_wav(tiny_model.parent / "k.wav", "cube control")))[None]
    prefix = [DECODER_START_ID] + ids(asr.tokenizer, "▁kub")
    with torch.inference_mode():
        logits = asr.model(input_values=audio, decoder_input_ids=torch.tensor([prefix])).logits[:, -1]
    e = ids(asr.tokenizer, "e")[0]
    before = torch.softmax(logits, -1)[0, e].item()
    after = torch.softmax(bias(torch.tensor([prefix]), logits.clone()), -1)[0, e].item()
    assert after > 5 * before


def test_generation_writes_the_term_when_biased_hard(tiny_model, tmp_path):
    asr = load_asr(tiny_model)
    audio = load_audio(speech_wav(tmp_path / "k.wav", "open cube control now"))
    plain = transcribe(asr, [audio])[0]
    biased = transcribe(with_bias(asr, ["kubectl"], boost=40.0), [audio])[0]
    assert "kubectl" not in plain and "kubectl" in biased


def test_no_terms_means_no_bias(tiny_model, tmp_path, tokenizer):
    import torch

    asr = load_asr(tiny_model)
    assert with_bias(asr, [], boost=3.0).bias is None and with_bias(asr, [" "], boost=3.0).bias is None
    assert configured_decoding(asr, ["kubectl"], Config(bias=BiasConfig(enabled=False))).bias is None
    unbiased = configured_decoding(asr, ["kubectl"], Config(), no_bias=True)
    assert unbiased.bias is None and unbiased.beams == Config().decode.beams  # --no-bias keeps the beam search
    empty = JargonBias(tokenizer, [], boost=3.0)
    scores = torch.randn(2, len(tokenizer))
    assert torch.equal(empty(torch.ones(2, 3, dtype=torch.long), scores.clone()), scores)
    audio = load_audio(speech_wav(tmp_path / "k.wav", "open the door"))
    assert transcribe(with_bias(asr, [], boost=3.0), [audio]) == transcribe(asr, [audio])


def test_cli_biases_with_the_workspace_list_unless_no_bias(tiny_model, tmp_path):
    from vocabd.workspace import init_workspace

    ws = init_workspace(tmp_path / "ws")
    ws.config_file.write_text(f'[model]\nbase = "{tiny_model}"\n[bias]\nboost = 40.0\n')
    (ws.data / "jargon.txt").write_text("kubectl\n")
    wav = speech_wav(tmp_path / "k.wav", "open cube control now")
    (tmp_path / "m.jsonl").write_text(json.dumps({"audio": str(wav), "text": "open kubectl now"}) + "\n")

    def run(command, *args):
        cmd = [sys.executable, "-m", "vocabd", command, *args, "-w", str(ws.root)]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()

    assert "kubectl" in run("transcribe", str(wav))
    assert "kubectl" not in run("transcribe", str(wav), "--no-bias")
    jargon = ["--jargon", str(ws.data / "jargon.txt"), "--allow-outside", "--json"]
    biased = json.loads(run("evaluate", str(tmp_path / "m.jsonl"), *jargon))
    plain = json.loads(run("evaluate", str(tmp_path / "m.jsonl"), *jargon, "--no-bias"))
    assert biased["bias"] == {"terms": 1, "boost": 40.0, "start_bonus": 20.0, "said_forms": 3}
    assert plain["bias"] is None
    assert biased["beams"] == plain["beams"] == 4
    assert biased["terms"]["kubectl"]["hits"] == 1 and plain["terms"]["kubectl"]["hits"] == 0
