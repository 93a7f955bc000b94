#!/usr/bin/env python3
"""Writes bench/eval/judgments.jsonl: graded judgments over ../shared/corpus (docs/ and photos/).

The grades are decisions written down below, per query, by a person who read the documents (see
bench/eval/README.md for the rules). This script only expands them into (query, doc, grade) lines
and checks them against the documents' text, so that a typo in a path or a grade that the text
contradicts fails loudly instead of entering the set:
  - every graded document exists under the corpus;
  - the "evidence" words of a query occur in every grade-2 document that has extractable text
    (read from an index made by filesearch: --db), so a grade-2 decision is backed by the text;
  - grade-1 "also" chapters of the Debian Reference are the other chapters where each evidence
    word occurs at least MIN_MENTIONS times (the rule in README.md), printed for review.
Usage: build_judgments.py --corpus ../shared/corpus --db DATA/filesearch.db > bench/eval/judgments.jsonl
(DATA: a data directory where ../shared/corpus/docs was indexed; bench/eval/run.sh makes one.)
"""
import argparse
import json
import os
import re
import sqlite3
import sys

MIN_MENTIONS = 5
REF = "docs/debian-reference/debian-reference/"
BOOK = [REF + "debian-reference.en.pdf", REF + "debian-reference.en.txt.gz"]  # the whole book
TOC = REF + "index.en.html"  # table of contents: lists every section title

# Debian Reference: (query, chapters of grade 2, evidence words). The grade-2 chapter is the one
# whose section (title in the comment) is about the query's topic.
DEBIAN = [
    ("debian package management", ["ch02"], ["package management"]),          # ch 2 title
    ("aptitude key bindings", ["ch02"], ["aptitude", "key"]),                # 2.2.4
    ("system wide upgrade", ["ch02"], ["upgrade"]),                          # 2.3.5
    ("dpkg-divert", ["ch02"], ["dpkg-divert"]),                              # 2.5.12
    ("update-alternatives", ["ch02"], ["update-alternatives"]),              # 2.5.10
    ("proxy server for apt", ["ch02"], ["proxy"]),                           # 2.7.14
    ("recovery from a broken system", ["ch02"], ["broken"]),                # 2.6
    ("boot loader", ["ch03"], ["boot loader"]),                              # 3.1.2
    ("systemd socket activation", ["ch03"], ["socket activation"]),          # 3.7.1
    ("udev", ["ch03"], ["udev"]),                                            # 3.8
    ("kernel message dmesg", ["ch03"], ["dmesg"]),                           # 3.3
    ("good password", ["ch04"], ["password"]),                               # 4.3
    ("PAM and NSS", ["ch04"], ["pam", "nss"]),                               # 4.5
    ("sudo configuration", ["ch01", "ch04"], ["sudo"]),                      # 1.1.12, 4.7.1
    ("PolicyKit", ["ch04"], ["polkit"]),                                     # 4.7.2
    ("hostname resolution", ["ch05"], ["hostname"]),                         # 5.1.1
    ("network interface name", ["ch05"], ["interface"]),                     # 5.1.2
    ("netfilter firewall", ["ch05"], ["netfilter"]),                         # 5.6
    ("optimal MTU", ["ch05"], ["mtu"]),                                      # 5.5.1
    ("mail transport agent", ["ch06"], ["mta"]),                             # 6.2.4
    ("ssh port forwarding", ["ch06"], ["port forwarding"]),                  # 6.3.7
    ("ssh-agent", ["ch06"], ["ssh-agent"]),                                  # 6.3.5
    ("print server CUPS", ["ch06", "ch11"], ["cups"]),                       # 6.4, 11.4.4
    ("spoofing the user agent string", ["ch06"], ["user-agent"]),            # 6.1.1
    ("font rasterization", ["ch07"], ["font"]),                              # 7.5.2
    ("remote desktop", ["ch07"], ["remote desktop"]),                        # 7.7
    ("clipboard", ["ch07"], ["clipboard"]),                                  # 7.9
    ("UTF-8 locale", ["ch08"], ["locale"]),                                  # 8.1.1
    ("input method IBus", ["ch08"], ["ibus"]),                               # 8.2.3
    ("customizing vim", ["ch09"], ["vim"]),                                  # 9.2
    ("scheduling tasks regularly with cron", ["ch09"], ["cron"]),            # 9.4.14
    ("disk partition", ["ch09"], ["partition"]),                             # 9.6.2
    ("LVM", ["ch09"], ["lvm"]),                                              # 9.6.4
    ("encrypting a removable disk", ["ch09"], ["dm-crypt"]),                 # 9.9.1
    ("solid state drive", ["ch09"], ["solid state"]),                        # 9.6.10
    ("compiling the kernel", ["ch09"], ["kernel"]),                          # 9.10.3
    ("virtualization", ["ch09"], ["virtualization"]),                        # 9.11
    ("backup and recovery", ["ch10"], ["backup"]),                           # 10.2
    ("GnuPG key management", ["ch10"], ["gnupg"]),                           # 10.3.1
    ("git", ["ch10"], ["git"]),                                              # 10.5
    ("rsync", ["ch10"], ["rsync"]),                                          # 10.1.2
    ("iconv", ["ch11"], ["iconv"]),                                          # 11.1.1
    ("XML processing", ["ch11"], ["xml"]),                                   # 11.2.2
    ("TeX LaTeX typesetting", ["ch11"], ["latex"]),                          # 11.3.2
    ("ghostscript", ["ch11"], ["ghostscript"]),                              # 11.4.1
    ("shell loops", ["ch12"], ["loop"]),                                     # 12.1.4
    ("gdb backtrace", ["ch12"], ["gdb", "backtrace"]),                       # 12.5.3
    ("autotools", ["ch12"], ["autotools"]),                                  # 12.6.2
    ("flex bison", ["ch12"], ["flex", "bison"]),                             # 12.3.3-4
    ("making a debian package", ["ch12"], ["debian package"]),               # 12.9
    ("regular expressions", ["ch01"], ["regular expression"]),               # 1.6.2
    ("midnight commander", ["ch01"], ["midnight commander"]),                # 1.3
    ("umask", ["ch01"], ["umask"]),                                          # 1.2.4
    ("what is debian", ["pr01"], ["debian"]),                                # preface 2
    ("copyright history", ["apa"], ["copyright"]),                           # A.2
]

TEXTRACT = "docs/textract/tests/"
# Other documents: (query, {path: grade}, evidence words). Images and sound carrying the text in
# pixels or speech are relevant too (grade 1): their content is that text, even if no extractor
# here reads it.
def textract_set(stem, corpus, text_probe):
    out = {}
    base = os.path.join(corpus, TEXTRACT)
    for fmt in sorted(os.listdir(base)):
        folder = os.path.join(base, fmt)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            path = TEXTRACT + fmt + "/" + name
            if name.endswith(".txt"):
                # expected-output text files: relevant when they hold the text
                with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as f:
                    if text_probe in f.read().lower():
                        out[path] = 2
            elif name.startswith(stem + "."):
                media = fmt in ("png", "jpg", "gif", "tiff", "mp3", "wav", "ogg")
                out[path] = 1 if media else 2
    return out

PYPDF = "docs/pypdf/"
MEDIA = ("png", "jpg", "gif", "tiff", "mp3", "wav", "ogg")


def raw(*formats):
    """The raw_text files of these textract folders (each holds its own sample text): the
    document itself and the expected-output .txt files beside it. Media files grade 1."""
    def expand(corpus):
        out = {}
        for fmt in formats:
            folder = os.path.join(corpus, TEXTRACT, fmt)
            for name in sorted(os.listdir(folder)):
                if name.startswith("raw_text"):
                    media = fmt in MEDIA and not name.endswith(".txt")
                    out[TEXTRACT + fmt + "/" + name] = 1 if media else 2
        return out
    return expand


OTHER = [
    ("the quick brown fox jumps over the lazy dog", ("textract", "standardized_text", "quick brown fox"), ["quick", "fox"]),
    ("little bo peep has lost her sheep", {TEXTRACT + "txt/raw_text.txt": 2}, ["peep", "sheep"]),
    ("I love word documents", raw("doc", "docx", "rtf", "pdf"), ["love word documents"]),
    ("number of potholes filled", raw("csv", "psv", "tsv"), ["potholes"]),
    ("the avalanche at tunnel creek", raw("html"), ["avalanche", "tunnel creek"]),
    ("worksheet functions IFERROR", raw("ods", "xls", "xlsx"), ["iferror"]),
    ("everything is awesome", raw("mp3", "ogg", "wav"), ["awesome"]),
    ("emergency alert system test", raw("jpg"), ["emergency alert"]),
    ("MS Outlook MSG extractor", raw("msg"), ["outlook"]),
    ("epub testing lorem ipsum", raw("epub"), ["epub"]),
    ("list of countries by population", {TEXTRACT + "html/tables.html": 2, TEXTRACT + "html/tables.txt": 2}, ["countries"]),
    ("paragraph before the table", {TEXTRACT + "docx/paragraphs_and_tables.docx": 2,
                                    TEXTRACT + "docx/paragraphs_and_tables.txt": 2}, ["paragraph"]),
    ("the crazy ones misfits rebels", {PYPDF + "021-pdfa/crazyones-pdfa.pdf": 2}, ["crazy", "misfits"]),
    ("habibi arabic", {PYPDF + "015-arabic/habibi.pdf": 2, PYPDF + "015-arabic/habibi-rotated.pdf": 2,
                       PYPDF + "015-arabic/habibi-oneline-cmap.pdf": 2, PYPDF + "015-arabic/habibi.html": 2,
                       PYPDF + "015-arabic/README.md": 1}, ["habibi"]),
    ("beautiful is better than ugly", {PYPDF + "011-google-doc-document/google-doc-document.pdf": 2}, ["beautiful", "ugly"]),
    ("form first name birthday nationality", {PYPDF + "012-libreoffice-form/libreoffice-form.pdf": 2,
                                              PYPDF + "012-libreoffice-form/libreoffice-form.odt": 1,
                                              PYPDF + "010-pdflatex-forms/pdflatex-forms.pdf": 1}, []),
    ("two column document", {PYPDF + "026-latex-multicolumn/multicolumn.pdf": 2,
                             PYPDF + "026-latex-multicolumn/multicolumn.tex": 2}, ["two-column"]),
    ("Geometrie und Topologie", {PYPDF + "009-pdflatex-geotopo/GeoTopo-komprimiert.pdf": 2}, ["geometrie", "topologie"]),
    ("link to an awesome blog", {PYPDF + "016-libre-office-link/libre-office-link.pdf": 2}, ["awesome", "blog"]),
    ("signed fingerprint", {PYPDF + "013-reportlab-overlay/reportlab-overlay.pdf": 2}, ["fingerprint"]),
    ("text without a meaning", {PYPDF + "004-pdflatex-4-pages/pdflatex-4-pages.pdf": 2,
                                PYPDF + "006-pdflatex-outline/pdflatex-outline.pdf": 2,
                                PYPDF + "014-outlines/mistitled_outlines_example.pdf": 2}, ["without a meaning"]),
    ("password protected pdf", {PYPDF + "005-libreoffice-writer-password/libreoffice-writer-password.pdf": 2,
                                PYPDF + "005-libreoffice-writer-password/README.md": 1,
                                PYPDF + "005-libreoffice-writer-password/source.odt": 1}, []),
]


# Pictures: graded by looking at each photo (and the captions.tsv files of the folders that have
# them): 2 = the photo shows what the query describes, 1 = a related scene.
K = "photos/kodak/kodim%02d.png"
W = "photos/wikipedia/%03d.png"
S = "photos/samples/"
SK = S + "skimage-clip-8/"
SKA = SK + "all_skimage_data/"
PICTURES = [
    ("parrots", {K % 23: 2}),
    ("lighthouse", {K % 19: 2, K % 21: 2}),
    ("sailboats", {K % 6: 2, K % 9: 2, K % 10: 2, K % 11: 1}),
    ("propeller airplane", {K % 20: 2}),
    ("motocross riders", {K % 5: 2}),
    ("white water rafting", {K % 14: 2}),
    ("a tiger", {W % 1: 2}),
    ("bridge at night", {W % 3: 2, W % 11: 1}),
    ("city skyline at night", {W % 11: 2, W % 3: 1}),
    ("mountain lake", {W % 13: 2, K % 13: 1, K % 16: 1}),
    ("hurricane seen from space", {W % 15: 2}),
    ("cathedral interior", {W % 2: 2, W % 12: 2, W % 9: 1}),
    ("old car", {W % 14: 2}),
    ("a pagoda", {S + "china.jpg": 2}),
    ("an orange flower", {S + "flower.jpg": 2, K % 7: 1}),
    ("a tabby cat", {SK + "chelsea.png": 2, SKA + "chelsea.png": 2}),
    ("an astronaut", {SK + "astronaut.png": 2, SKA + "astronaut.png": 2}),
    ("a red motorcycle", {SK + "motorcycle_right.png": 2, SKA + "motorcycle_right.png": 2,
                          SKA + "motorcycle_left.png": 2}),
    ("a cup of coffee", {SK + "coffee.png": 2, SKA + "coffee.png": 2}),
    ("a rocket on a launchpad", {SK + "rocket.jpg": 2, SKA + "rocket.jpg": 2}),
    ("grace hopper", {S + "grace_hopper.jpg": 2}),
    ("kodim", {K % i: 2 for i in range(1, 25)}),  # by name: every Kodak photo is kodimNN.png
]


def mentions(body, word):
    """How often `word` occurs in `body` as a word (not inside another: "git" in "digit")."""
    return len(re.findall(r"(?<![\w-])" + re.escape(word) + r"(?![\w-])", body))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--db", required=True, help="filesearch.db of an index of CORPUS/docs")
    args = ap.parse_args()
    corpus = os.path.realpath(args.corpus)
    db = sqlite3.connect(args.db)
    text = {}
    for path, content in db.execute("SELECT path, content FROM documents"):
        if path.startswith(corpus + "/"):
            text[path[len(corpus) + 1:]] = " ".join(content.lower().split())
    problems = []
    lines = []

    def emit(qid, query, grades, evidence):
        for doc, grade in grades.items():
            if not os.path.exists(os.path.join(corpus, doc)):
                problems.append(f"{qid}: {doc} does not exist")
            body = text.get(doc, "")
            if grade == 2 and body:
                for word in evidence:
                    if word not in body:
                        problems.append(f"{qid} '{query}': grade-2 {doc} does not contain '{word}'")
            lines.append({"id": qid, "query": query, "doc": doc, "grade": grade})

    for i, (query, primary, evidence) in enumerate(DEBIAN, 1):
        qid = f"deb{i:02d}"
        grades = {REF + c + ".en.html": 2 for c in primary}
        also = []
        for doc, body in sorted(text.items()):
            m = re.match(re.escape(REF) + r"((?:ch|pr|ap)\w+)\.en\.html$", doc)
            if not m or doc in grades:
                continue
            if evidence and all(mentions(body, w) >= MIN_MENTIONS for w in evidence):
                grades[doc] = 1
                also.append(m.group(1))
        for doc in BOOK + [TOC]:
            grades.setdefault(doc, 1)
        print(f"{qid} {query!r}: 2 = {primary}, 1 = {also} + book, toc", file=sys.stderr)
        emit(qid, query, grades, evidence)
    for i, (query, spec, evidence) in enumerate(OTHER, 1):
        qid = f"doc{i:02d}"
        if isinstance(spec, tuple):
            grades = textract_set(spec[1], corpus, spec[2])
        elif callable(spec):
            grades = spec(corpus)
        else:
            grades = spec
        emit(qid, query, grades, evidence)
        print(f"{qid} {query!r}: {len(grades)} judged", file=sys.stderr)
    for i, (query, grades) in enumerate(PICTURES, 1):
        qid = f"pic{i:02d}"
        emit(qid, query, grades, [])
        print(f"{qid} {query!r}: {len(grades)} judged", file=sys.stderr)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)
    for l in lines:
        print(json.dumps(l, ensure_ascii=False))


if __name__ == "__main__":
    main()
