#!/usr/bin/env python3
"""The peer of bench_office_rate: text from the same files with Python's standard library only
(zipfile + xml.etree.ElementTree for OOXML/ODF/EPUB, email for .eml): the docx2txt-style approach.
Prints the same table columns. Usage: peer.py [--repeat N] FILE..."""
import email
import email.policy
import re
import sys
import time
import zipfile
import xml.etree.ElementTree as ET
from collections import defaultdict

PARTS = {
    "docx": re.compile(r"word/(document|header\d*|footer\d*|footnotes|endnotes|comments)\.xml$"),
    "pptx": re.compile(r"ppt/(slides/slide|notesSlides/notesSlide)\d+\.xml$"),
    "xlsx": re.compile(r"xl/(sharedStrings|worksheets/sheet\d+|workbook)\.xml$"),
    "odt": re.compile(r"(content|meta)\.xml$"),
    "ods": re.compile(r"(content|meta)\.xml$"),
    "odp": re.compile(r"(content|meta)\.xml$"),
    "epub": re.compile(r".*\.(x?html?|opf)$"),
}


def zip_text(data_path, fmt):
    out = []
    with zipfile.ZipFile(data_path) as z:
        for name in z.namelist():
            if PARTS[fmt].match(name):
                root = ET.fromstring(z.read(name))
                out.append(" ".join(t for t in root.itertext()))
    return "\n".join(out)


def eml_text(data_path):
    with open(data_path, "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    out = [str(msg.get("subject", "")), str(msg.get("from", ""))]
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            out.append(part.get_content())
        elif part.get_filename():
            out.append(part.get_filename())
    return "\n".join(out)


def main():
    args = sys.argv[1:]
    repeat = 20
    if args[:1] == ["--repeat"]:
        repeat, args = int(args[1]), args[2:]
    tally = defaultdict(lambda: [0, 0.0, 0.0, 0.0])  # files, bytes, text bytes, seconds
    for path in args:
        fmt = path.rsplit(".", 1)[-1]
        if fmt not in PARTS and fmt != "eml":
            continue
        size = len(open(path, "rb").read())
        start = time.perf_counter()
        for _ in range(repeat):
            text = eml_text(path) if fmt == "eml" else zip_text(path, fmt)
        t = tally[fmt]
        t[0] += repeat
        t[1] += size * repeat
        t[2] += len(text.encode()) * repeat
        t[3] += time.perf_counter() - start
    print("%-6s %6s %10s %10s %10s %10s" % ("format", "files", "input_KB", "files/s", "MB/s", "text_MB/s"))
    for fmt, (files, nbytes, text, secs) in sorted(tally.items()):
        print("%-6s %6d %10.1f %10.0f %10.1f %10.1f" % (fmt, files, nbytes / files / 1024, files / secs,
                                                         nbytes / secs / 1e6, text / secs / 1e6))


if __name__ == "__main__":
    main()
