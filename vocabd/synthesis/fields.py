"""Which field each jargon term belongs to, worked out offline from the term itself and its company.

A term's own evidence comes first: a shipped lexicon of cue words and word endings per field (clinical drug
endings such as -olol, -pril, -statin; legal Latin; finance ratios; software names and symbols such as `@`,
versions and `250ms`). A term with no evidence of its own takes the field of its neighbours in the list
(nearer lines weigh more) and of the user's own transcripts; with no evidence anywhere it is `everyday`.
Software is never a fallback: only evidence makes a term software.

Clinical and legal terms also get a kind (drug, test, condition, procedure; filing, doctrine) so that a frame
can say "start {drug}" or "file the {filing}" only with a term that fits.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

from vocabd.jargon import Term

FIELDS = ("clinical", "legal", "finance", "software", "science", "everyday")
FALLBACK = "everyday"

WORDS: dict[str, frozenset[str]] = {
    "clinical": frozenset("""
        patient patients dose doses mg mcg mmhg troponin echocardiogram echo ecg ekg bnp hba1c a1c stemi nstemi
        angina arrhythmia fibrillation afib tachycardia bradycardia hypertension hypotension diabetes insulin
        warfarin heparin aspirin furosemide metformin digoxin amiodarone nitroglycerin clopidogrel ticagrelor
        apixaban stent catheter catheterization biopsy sepsis pneumonia mri copd icu cbc creatinine potassium
        lipid cholesterol ldl hdl inr ejection systolic diastolic anticoagulation anticoagulant triage ward
        clinic antibiotic vaccine cabg pci ablation bypass pacemaker defibrillator angioplasty angiogram infarction
        myocardial ischemia ischemic edema dyspnea syncope murmur stenosis regurgitation embolism thrombosis
        dvt pe nephrology cardiology oncology radiology chemotherapy dialysis intubation ventilator saline
        electrolytes hemoglobin platelets glucose sodium telemetry discharge bolus infusion iv prn bid tid qid
        """.split()),
    "legal": frozenset("""
        tort torts estoppel habeas corpus voir dire subpoena affidavit deposition plaintiff defendant
        indemnification indemnity injunction statute appellate certiorari mens rea res judicata amicus curiae
        pro bono litigation arbitration verdict stipulation tortious negligence liability lien easement
        probate codicil testator attorney judgment acquittal felony misdemeanor parole bail custody plea
        precedent jurisdiction venue covenant hearsay prima facie quo warrant docket remand sua sponte
        non conveniens promissory quantum meruit laches rescission counsel litigator paralegal magistrate
        tribunal appellant respondent petitioner statutory constitutional clause contract breach damages
        discovery interrogatories interrogatory motion brief pleadings pleading sworn testimony witness
        juror jury court courtroom judge barrister solicitor notary nda trademark copyright patent
        """.split()),
    "finance": frozenset("""
        ebitda ebit amortization amortisation depreciation accrual accruals hedge hedging yield bond bonds etf
        etfs ipo eps roi roe roa capex opex liquidity equity dividend dividends arbitrage derivative derivatives
        swap swaps futures bps libor sofr collateral leverage portfolio annuity escrow mortgage refinancing
        underwriting solvency gaap ifrs forex fx nasdaq treasury coupon maturity ledger receivable receivables
        payable payables audit auditor fiduciary tranche securitization cds cdo wacc npv irr dcf vwap volatility
        vix goodwill writedown impairment revenue fiscal quarterly balance sheet cashflow cash flow basis points
        stock stocks shares shareholder valuation margin margins interest rate inflation credit debit loan
        loans principal annualized brokerage custodian hedgefund securities sec 10-k 10-q s&p dow
        """.split()),
    "software": frozenset("""
        kubectl k8s kubernetes docker nginx kafka grafana postgresql postgres mysql redis cuda api apis sdk
        json yaml git github gitlab linux python java javascript typescript react node npm aws gcp azure
        terraform ansible jenkins devops sre latency p95 p99 rpc grpc http https tcp udp dns ssl tls oauth
        jwt sql nosql regex cpu gpu ram ssd vm microservice backend frontend repo commit kubelet helm
        prometheus elasticsearch kibana splunk jira slack webhook cron systemd bash ssh url localhost config
        pbx sip voip asterisk ivr voicemail codec ci cd deploy server servers cluster pod pods container
        containers database nosql cache redis sqlite rust golang php ruby rails django flask fastapi vue
        angular ios android api gateway firewall vpn router ethernet wifi bluetooth usb kernel compiler
        debugger ide vscode vim emacs pytorch tensorflow onnx llm gpt
        """.split()),
    "science": frozenset("""
        crispr plasmid pcr qpcr dna rna mrna genome genomic genomics protein proteins enzyme mitochondria
        mitochondrial isotope isotopes spectrometry spectroscopy chromatography eigenvalue eigenvalues
        eigenvector quantum boson higgs photon photons electron electrons neutrino hadron catalyst polymer
        molecule molecular reagent reagents titration centrifuge pipette assay assays antibody antibodies
        blot elisa hplc nmr petri hypothesis anova bayesian entropy thermodynamics wavelength spectrum lattice
        tectonic sediment polymerase kinase ligase protease lipase nucleotide amino peptide ribosome
        chromosome allele phenotype genotype microscope microscopy telescope spectrometer sequencing
        neuron neurons synapse cortex hippocampus microbiome proteome transcriptome bacteria bacterial
        virus viral fungal algae photosynthesis oxidation reduction ion ions isomer solvent buffer
        """.split()),
}

# Word endings and inner parts, each with the least length a word must have for it to count (legal and
# finance words are told by the lexicon alone: their endings say too little).
AFFIXES: dict[str, tuple[tuple[str, int], ...]] = {
    "clinical": (("olol", 6), ("pril", 6), ("sartan", 8), ("statin", 8), ("parin", 7), ("xaban", 8),
                 ("gatran", 8), ("semide", 8), ("thiazide", 10), ("dipine", 8), ("cillin", 8), ("mycin", 7),
                 ("floxacin", 10), ("prazole", 9), ("tidine", 8), ("gliptin", 9), ("gliflozin", 11),
                 ("glutide", 9), ("zepam", 7), ("zolam", 7), ("oxetine", 9), ("triptan", 9), ("profen", 8),
                 ("coxib", 7), ("itis", 7), ("emia", 7), ("osis", 7), ("pathy", 8), ("algia", 7),
                 ("ectomy", 8), ("otomy", 7), ("ostomy", 8), ("plasty", 8), ("cardio", 7), ("cardia", 7),
                 ("gastro", 7), ("hepat", 7), ("nephr", 7), ("pulmon", 7), ("cardiogram", 10),
                 ("angiogram", 9), ("graphy", 9)),
    "software": (("ctl", 5), ("sql", 5), ("db", 5), ("ops", 6), ("js", 4), ("conf", 6)),
    "science": (("ometry", 8), ("ometer", 8), ("merase", 8), ("nucle", 7), ("genes", 7), ("bacter", 8)),
}

_SOFTWARE_SHAPES = (
    re.compile(r"\S+@\S+\.\w+"),  # addresses
    re.compile(r"^v\d+(\.\d+)+$", re.I),  # versions
    re.compile(r"^\d+(\.\d+)?(ms|us|ns|kb|mb|gb|tb)$", re.I),  # units of software things
    re.compile(r"^p\d{2,3}$", re.I),  # latency percentiles
    re.compile(r"://|^--|\w_\w|\.(io|py|js|ts|sh|yaml|yml|json|toml|com|org|net)$", re.I),
    re.compile(r"^[a-z]+[A-Z][a-z]+[A-Za-z]*$"),  # camelCase identifiers
)
_FINANCE_SHAPES = (re.compile(r"[$€£¥]"), re.compile(r"^\d+(\.\d+)?\s?(%|bps)$", re.I))
_CLINICAL_SHAPES = (re.compile(r"^\d+(\.\d+)?\s?(mg|mcg|ml|mmhg|mmol)$", re.I),)

# Kinds of term within a field, so that a frame can say "start {drug}" or "file the {filing}" only with a term
# that fits; the first kind whose endings match wins (an echocardiogram is a test before it is cardiac).
FIELD_KINDS: dict[str, dict[str, tuple[str, ...]]] = {
    "clinical": {
        "test": ("troponin", "bnp", "hba1c", "a1c", "ecg", "ekg", "echo", "gram", "graphy", "inr", "cbc", "panel",
                 "creatinine", "mri", "ct", "x-ray", "scan", "telemetry", "lipid", "culture", "level", "count"),
        "procedure": ("ectomy", "otomy", "ostomy", "plasty", "stent", "catheterization", "bypass", "ablation",
                      "cabg", "pci", "intubation", "dialysis", "transplant", "biopsy", "repair", "replacement"),
        "condition": ("stemi", "angina", "fibrillation", "afib", "cardia", "tension", "diabetes", "sepsis",
                      "pneumonia", "copd", "itis", "emia", "osis", "pathy", "algia", "failure", "infarction",
                      "embolism", "thrombosis", "stenosis", "regurgitation", "syncope", "edema", "ischemia"),
        "drug": ("olol", "pril", "sartan", "statin", "parin", "xaban", "gatran", "semide", "thiazide", "dipine",
                 "cillin", "mycin", "floxacin", "prazole", "tidine", "gliptin", "gliflozin", "glutide", "zepam",
                 "zolam", "oxetine", "triptan", "profen", "coxib", "arin", "formin", "oxin", "darone", "grel",
                 "glycerin", "sulin"),
    },
    "legal": {
        "filing": ("brief", "motion", "tecum", "subpoena", "petition", "affidavit", "writ", "complaint", "order",
                   "notice", "pleading", "memorandum", "summons", "interrogatories"),
        "doctrine": ("estoppel", "judicata", "laches", "interference", "negligence", "liability", "immunity",
                     "privilege", "doctrine", "rule", "indemnification", "indemnity", "meruit", "rea", "facie",
                     "hearsay", "conveniens"),
    },
}
KINDS = tuple(kind for kinds in FIELD_KINDS.values() for kind in kinds)
_TOKEN = re.compile(r"[a-z0-9&]+(?:-[a-z0-9]+)*")


@dataclass(frozen=True)
class FieldGuess:
    field: str
    kind: str | None  # FIELD_KINDS: drug | test | condition | procedure | filing | doctrine
    evidence: str  # own | neighbours | transcripts | none


def detect_fields(terms: Sequence[Term], texts: Iterable[str] = ()) -> dict[str, FieldGuess]:
    """Each term's field by its written form, keyed by the written form."""
    own = [_own_scores(term) for term in terms]
    prior = _text_scores(texts)
    out: dict[str, FieldGuess] = {}
    for i, term in enumerate(terms):
        if own[i]:
            field, evidence = _best(own[i]), "own"
        else:
            field, evidence = _from_company(i, own, prior)
        out[term.written] = FieldGuess(field, term_kind(term, field), evidence)
    return out


def term_kind(term: Term, field: str) -> str | None:
    """The term's kind within its field (drug, test, filing, doctrine, ...); None when it says nothing."""
    words = _tokens(term.written) + _tokens(term.spoken)
    for kind, endings in FIELD_KINDS.get(field, {}).items():
        if any(w == ending or (len(ending) > 3 and w.endswith(ending)) for w in words for ending in endings):
            return kind
    return None


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def _own_scores(term: Term) -> Counter[str]:
    scores: Counter[str] = Counter()
    whole = term.written.lower()
    words = set(_tokens(term.written)) | set(_tokens(term.spoken)) | {whole}
    for field, lexicon in WORDS.items():
        scores[field] += 2 * len(words & lexicon)
    for field, affixes in AFFIXES.items():
        scores[field] += sum(1 for w in words for part, least in affixes
                             if len(w) >= least and part in w and w not in WORDS["software"])
    for field, shapes in (("software", _SOFTWARE_SHAPES), ("finance", _FINANCE_SHAPES),
                          ("clinical", _CLINICAL_SHAPES)):
        scores[field] += 2 * sum(1 for shape in shapes if shape.search(term.written))
    return +scores


def _text_scores(texts: Iterable[str]) -> Counter[str]:
    """Cue words in the user's own transcripts: a weak prior for terms that say nothing themselves."""
    scores: Counter[str] = Counter()
    for text in texts:
        for word in _tokens(text):
            for field, lexicon in WORDS.items():
                if word in lexicon:
                    scores[field] += 1
    return scores


def _best(scores: Counter[str]) -> str:
    top = max(scores.values())
    return next(field for field in FIELDS if scores[field] == top)  # ties: the order of FIELDS


def _from_company(i: int, own: list[Counter[str]], prior: Counter[str]) -> tuple[str, str]:
    votes: Counter[str] = Counter()
    for j, scores in enumerate(own):
        if j != i and scores:
            votes[_best(scores)] += 1.0 / abs(i - j)
    if votes:
        return _best(votes), "neighbours"
    if prior:
        return _best(prior), "transcripts"
    return FALLBACK, "none"
