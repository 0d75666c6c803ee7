from vocabd.asr.said import SaidForms, said_forms
from vocabd.jargon import parse_jargon_text


def test_said_forms_are_those_that_cannot_be_ordinary_speech(tmp_path):
    terms = {t.written: t for t in parse_jargon_text("k8s\nWER\njson\nmysql\nCUDA\nGrafana\nKafka\n"
                                                     "kubectl | cube cuttle\nDr. Vogt | doctor vogt\n", tmp_path)}
    assert said_forms(terms["k8s"]) == ("kubernetes", "koober netties")  # not "K eights": letters are written
    assert said_forms(terms["CUDA"])[0] == "cuda" and said_forms(terms["Grafana"])[0] == "grafana"
    assert said_forms(terms["Dr. Vogt"]) == ("doctor vogt",)  # the list's own form
    for ordinary in ("WER", "json", "mysql", "Kafka", "kubectl"):  # "W E R", "jason", "my sequel", dictionary words
        assert said_forms(terms[ordinary]) == (), ordinary


def test_said_forms_and_their_near_misses_are_written_as_the_term(tmp_path):
    said = SaidForms(parse_jargon_text("k8s\nCUDA\njson\nGrafana\n", tmp_path))
    assert len(said) == 6  # kubernetes, koober netties, cuda, coodah, grafana, grahfahnah
    assert said.rewrite("Kubernetes, then KUBERNETES and koober  netties on cuda.") == "k8s, then k8s and k8s on CUDA."
    assert said.rewrite("The kubirnets dashboard, moved to kebbernees.") == "The k8s dashboard, moved to k8s."
    assert said.rewrite("She built a new gray Fanu alert") == "She built a new Grafana alert"  # two words, one near
    assert said.rewrite("moved to kebbernees") == "moved to k8s"  # at the very end too
    assert said.rewrite("barracuda Jason") == "barracuda Jason"


def test_what_is_not_a_near_miss(tmp_path):
    said = SaidForms(parse_jargon_text("k8s\nCUDA\nPostgres\n", tmp_path))
    for text in ("A glass of Cabernet, then more Cabernets.",  # dictionary words
                 "Mr Gregson and Mr Kubrick",  # names, but not that near
                 "The kuda and the cudda",  # near "cuda", but four letters: only as said
                 "We run PostgreSQL",  # a capital inside: a name the model meant
                 "mail ops@kubirnets.io or see /srv/kubirnets and kubirnets.yaml",  # addresses and paths
                 "the kubirnets2 and 3kubirnets builds"):  # names with digits
        assert said.rewrite(text) == text, text
