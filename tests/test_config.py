import pytest

from vocabd.config import Config, load_config, render_config
from vocabd.errors import ConfigError, WorkspaceError
from vocabd.workspace import ENV_VAR, find_workspace, init_workspace


def test_defaults_follow_the_plan():
    c = Config()
    assert (c.mini.clips, c.mini.max_steps) == (5, 50)
    assert (c.full.clips, c.full.max_steps, c.full.eval_interval) == (500, 1000, 100)
    t = c.train
    assert (t.lr, t.lora_r, t.lora_alpha, t.lora_dropout, t.use_dora) == (1e-4, 32, 64, 0.1, True)


def test_rendered_config_reads_back_equal(tmp_path):
    path = tmp_path / "vocabd.toml"
    path.write_text(render_config(Config()))
    assert load_config(path) == Config()


def test_override_and_int_for_float(tmp_path):
    path = tmp_path / "vocabd.toml"
    path.write_text("[train]\nlr = 1\nlora_r = 8\n[full]\nmax_steps = 200\n")
    c = load_config(path)
    assert c.train.lr == 1.0 and c.train.lora_r == 8 and c.full.max_steps == 200 and c.full.clips == 500


@pytest.mark.parametrize("text, key", [
    ("[train]\nlora_rank = 8\n", "train.lora_rank"),
    ("[train]\nlora_r = 'big'\n", "train.lora_r"),
    ("[train]\nuse_dora = 1\n", "train.use_dora"),
    ("[trian]\nlr = 1\n", "trian"),
    ("train = 3\n", "train"),
    ("[mini]\nclips = -5\n", "mini.clips"),
])
def test_errors_name_key_and_file(tmp_path, text, key):
    path = tmp_path / "vocabd.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert e.value.key == key and str(path) in str(e.value)


def test_broken_toml_names_file(tmp_path):
    path = tmp_path / "vocabd.toml"
    path.write_text("[train\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_workspace_discovery_order(tmp_path, monkeypatch):
    a, b, c = (init_workspace(tmp_path / n) for n in "abc")
    assert all((w.root / d).is_dir() for w in (a, b, c) for d in ("inbox", "data", "runs"))
    monkeypatch.setenv(ENV_VAR, str(b.root))
    monkeypatch.chdir(c.root)
    assert find_workspace(a.root).root == a.root
    assert find_workspace().root == b.root
    monkeypatch.delenv(ENV_VAR)
    assert find_workspace().root == c.root
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    with pytest.raises(WorkspaceError, match="vocabd init"):
        find_workspace()


def test_init_keeps_existing_config(tmp_path):
    ws = init_workspace(tmp_path)
    ws.config_file.write_text("[train]\nlora_r = 4\n")
    assert init_workspace(tmp_path).config.train.lora_r == 4
