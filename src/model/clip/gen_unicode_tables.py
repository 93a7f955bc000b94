#!/usr/bin/env python3
"""Generates the Unicode tables the CLIP tokenizer needs (src/model/clip/unicode.cpp includes them).

Reads the Unicode Character Database as Debian's `unicode-data` package installs it
(/usr/share/unicode) and writes one C++ include file with sorted arrays:
  letters (\\p{L}), numbers (\\p{N}), White_Space, Cased, Case_Ignorable  -> code point ranges
  simple lower-case mappings + unconditional SpecialCasing lower-case     -> (cp, 1..3 cps)
  canonical combining classes != 0                                         -> ranges with a class
  canonical decompositions, canonical compositions (minus Full_Composition_Exclusion)
  Grapheme_Cluster_Break (derived as UAX #29 defines it) and Extended_Pictographic -> ranges
Usage: gen_unicode_tables.py UCD_DIR OUT_FILE
"""
import os
import sys


def parse_ranges(path, prop):
    """Ranges (lo, hi) of code points with `prop` in a UCD property file (PropList.txt style)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            cps, name = [x.strip() for x in line.split(";")[:2]]
            if name != prop:
                continue
            if ".." in cps:
                lo, hi = cps.split("..")
                out.append((int(lo, 16), int(hi, 16)))
            else:
                out.append((int(cps, 16), int(cps, 16)))
    return merge(out)


def merge(ranges):
    ranges = sorted(ranges)
    out = []
    for lo, hi in ranges:
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def read_unicode_data(path):
    """Rows (cp_lo, cp_hi, fields) with <..., First>/<..., Last> pairs folded into one range."""
    rows = []
    first = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split(";")
            cp = int(fields[0], 16)
            name = fields[1]
            if name.endswith(", First>"):
                first = cp
                continue
            if name.endswith(", Last>"):
                rows.append((first, cp, fields))
                first = None
                continue
            rows.append((cp, cp, fields))
    return rows


# Extended_Pictographic (emoji-data.txt, which Debian's unicode-data lacks), as node 20's ICU
# (Unicode 17) reports it. The property was laid out in Unicode 11 to cover reserved emoji blocks
# too, so it barely changes between versions.
EXTENDED_PICTOGRAPHIC = """
A9 AE 203C 2049 2122 2139 2194-2199 21A9-21AA 231A-231B 2328 23CF 23E9-23F3 23F8-23FA 24C2 25AA-25AB
25B6 25C0 25FB-25FE 2600-2604 260E 2611 2614-2615 2618 261D 2620 2622-2623 2626 262A 262E-262F
2638-263A 2640 2642 2648-2653 265F-2660 2663 2665-2666 2668 267B 267E-267F 2692-2697 2699 269B-269C
26A0-26A1 26A7 26AA-26AB 26B0-26B1 26BD-26BE 26C4-26C5 26C8 26CE-26CF 26D1 26D3-26D4 26E9-26EA
26F0-26F5 26F7-26FA 26FD 2702 2705 2708-270D 270F 2712 2714 2716 271D 2721 2728 2733-2734 2744 2747
274C 274E 2753-2755 2757 2763-2764 2795-2797 27A1 27B0 27BF 2934-2935 2B05-2B07 2B1B-2B1C 2B50 2B55
3030 303D 3297 3299 1F004 1F02C-1F02F 1F094-1F09F 1F0AF-1F0B0 1F0C0 1F0CF-1F0D0 1F0F6-1F0FF
1F170-1F171 1F17E-1F17F 1F18E 1F191-1F19A 1F1AE-1F1E5 1F201-1F20F 1F21A 1F22F 1F232-1F23A
1F23C-1F23F 1F249-1F25F 1F266-1F321 1F324-1F393 1F396-1F397 1F399-1F39B 1F39E-1F3F0 1F3F3-1F3F5
1F3F7-1F3FA 1F400-1F4FD 1F4FF-1F53D 1F549-1F54E 1F550-1F567 1F56F-1F570 1F573-1F57A 1F587
1F58A-1F58D 1F590 1F595-1F596 1F5A4-1F5A5 1F5A8 1F5B1-1F5B2 1F5BC 1F5C2-1F5C4 1F5D1-1F5D3
1F5DC-1F5DE 1F5E1 1F5E3 1F5E8 1F5EF 1F5F3 1F5FA-1F64F 1F680-1F6C5 1F6CB-1F6D2 1F6D5-1F6E5 1F6E9
1F6EB-1F6F0 1F6F3-1F6FF 1F7DA-1F7FF 1F80C-1F80F 1F848-1F84F 1F85A-1F85F 1F888-1F88F 1F8AE-1F8AF
1F8BC-1F8BF 1F8C2-1F8CF 1F8D9-1F8FF 1F90C-1F93A 1F93C-1F945 1F947-1F9FF 1FA58-1FA5F 1FA6E-1FAFF
1FC00-1FFFD
"""

# Hugging Face's tokenizers segments graphemes with Rust's unicode-segmentation, which follows
# Unicode 16 and later. Changes since 15.0 to the Grapheme_Cluster_Break of characters assigned by
# 15.0: these Mc characters became Grapheme_Extend (so Extend), U+1171E became SpacingMark and
# U+11A3A is no longer Prepend.
GCB_SINCE_15 = {
    "Extend": [0x0CC0, 0x0CC7, 0x0CC8, 0x0CCA, 0x0CCB, 0x1715, 0x1734, 0x1B3B, 0x1B3D, 0x1B43, 0x1B44,
               0x1BAA, 0x1BF2, 0x1BF3, 0xA953, 0xA9C0, 0x111C0, 0x11235, 0x1134D, 0x116B6, 0x1193D,
               0x11F41, 0x16FF0, 0x16FF1, 0x1D166, 0x1D16D],
    "SpacingMark": [0x1171E],
    "Other": [0x11A3A],
}

# Indic_Conjunct_Break (rule GB9c, Unicode 15.1; the sets as of Unicode 17): consonants and linkers.
# InCB=Extend is derived in unicode.cpp: Extend or ZWJ, except linkers and U+200C.
INCB_CONSONANT = """
915-939 958-95F 978-97F 995-9A8 9AA-9B0 9B2 9B6-9B9 9DC-9DD 9DF 9F0-9F1 A95-AA8 AAA-AB0 AB2-AB3
AB5-AB9 AF9 B15-B28 B2A-B30 B32-B33 B35-B39 B5C-B5D B5F B71 C15-C28 C2A-C39 C58-C5A D15-D3A
1000-102A 103F 1050-1055 105A-105D 1061 1065-1066 106E-1070 1075-1081 108E 1780-17B3 1A20-1A54
1B0B-1B0C 1B13-1B33 1B45-1B4C 1B83-1BA0 1BAE-1BAF 1BBB-1BBD A989-A98B A98F-A9B2 A9E0-A9E4 A9E7-A9EF
A9FA-A9FE AA60-AA6F AA71-AA73 AA7A AA7E-AA7F AAE0-AAEA ABC0-ABDA 10A00 10A10-10A13 10A15-10A17
10A19-10A35 11103-11126 11144 11147 11380-11389 1138B 1138E 11390-113B5 11900-11906 11909
1190C-11913 11915-11916 11918-1192F 11A00 11A0B-11A32 11A50 11A5C-11A83 11F04-11F10 11F12-11F33
"""
INCB_LINKER = """
94D 9CD ACD B4D C4D D4D 1039 17D2 1A60 1B44 1BAB A9C0 AAF6 10A3F 11133 113D0 1193E 11A47 11A99 11F42
"""

# Grapheme_Cluster_Break values, in the order of the enum in unicode.cpp.
GCB_NAMES = ["Other", "CR", "LF", "Control", "Extend", "ZWJ", "Regional_Indicator", "Prepend",
             "SpacingMark", "L", "V", "T", "LV", "LVT"]
# Mc characters that UAX #29 leaves out of SpacingMark.
SPACING_MARK_EXCEPTIONS = [0x102B, 0x102C, 0x1038, 0x1062, 0x1063, 0x1064, 0x1067, 0x1068, 0x1069,
                           0x106A, 0x106B, 0x106C, 0x106D, 0x1083, 0x1087, 0x1088, 0x1089, 0x108A,
                           0x108B, 0x108C, 0x108F, 0x109A, 0x109B, 0x109C, 0x1A61, 0x1A63, 0x1A64,
                           0xAA7B, 0xAA7D, 0x11720, 0x11721]


def grapheme_break(ucd, rows):
    """Grapheme_Cluster_Break as (lo, hi, value index) ranges, derived per UAX #29 table 2."""
    gcb = {}

    def assign(ranges, value, only_unset=True):
        for lo, hi in ranges:
            for cp in range(lo, hi + 1):
                if not only_unset or cp not in gcb:
                    gcb[cp] = value

    core = os.path.join(ucd, "DerivedCoreProperties.txt")
    props = os.path.join(ucd, "PropList.txt")
    indic = os.path.join(ucd, "IndicSyllabicCategory.txt")
    hangul = os.path.join(ucd, "HangulSyllableType.txt")
    pcm = set()
    for lo, hi in parse_ranges(props, "Prepended_Concatenation_Mark"):
        pcm.update(range(lo, hi + 1))
    gc_of = {}
    for lo, hi, fields in rows:
        for cp in range(lo, hi + 1):
            gc_of[cp] = fields[2]
    # Highest priority first; `assign` never overwrites.
    gcb[0x0D] = GCB_NAMES.index("CR")
    gcb[0x0A] = GCB_NAMES.index("LF")
    # ZWJ and Extend before Control: the tag characters U+E0020..E007F are Format but Extend.
    assign([(0x200D, 0x200D)], GCB_NAMES.index("ZWJ"))
    assign(parse_ranges(core, "Grapheme_Extend") + [(0x1F3FB, 0x1F3FF)], GCB_NAMES.index("Extend"))
    control = GCB_NAMES.index("Control")
    for cp, gc in gc_of.items():
        if gc in ("Zl", "Zp", "Cc") or (gc == "Cf" and cp not in (0x200C, 0x200D) and cp not in pcm):
            gcb.setdefault(cp, control)
    ignorable = parse_ranges(core, "Default_Ignorable_Code_Point")
    for lo, hi in ignorable:
        for cp in range(lo, hi + 1):
            if cp not in gc_of:  # unassigned and default-ignorable
                gcb.setdefault(cp, control)
    assign([(0x1F1E6, 0x1F1FF)], GCB_NAMES.index("Regional_Indicator"))
    prepend = parse_ranges(indic, "Consonant_Preceding_Repha") + parse_ranges(indic, "Consonant_Prefixed")
    assign(merge(prepend + [(cp, cp) for cp in pcm]), GCB_NAMES.index("Prepend"))
    spacing = [(cp, cp) for cp, gc in gc_of.items() if gc == "Mc" and cp not in SPACING_MARK_EXCEPTIONS]
    assign(merge(spacing + [(0x0E33, 0x0E33), (0x0EB3, 0x0EB3)]), GCB_NAMES.index("SpacingMark"))
    for name in ("L", "V", "T", "LV", "LVT"):
        assign(parse_ranges(hangul, name), GCB_NAMES.index(name))
    for name, cps in GCB_SINCE_15.items():
        for cp in cps:
            if name == "Other":
                gcb.pop(cp, None)
            else:
                gcb[cp] = GCB_NAMES.index(name)
    out = []
    for cp in sorted(gcb):
        value = gcb[cp]
        if out and out[-1][1] == cp - 1 and out[-1][2] == value:
            out[-1] = (out[-1][0], cp, value)
        else:
            out.append((cp, cp, value))
    return out


def parse_hex_ranges(text):
    out = []
    for item in text.split():
        lo, _, hi = item.partition("-")
        out.append((int(lo, 16), int(hi or lo, 16)))
    return merge(out)


def main():
    ucd, out_path = sys.argv[1], sys.argv[2]
    rows = read_unicode_data(os.path.join(ucd, "UnicodeData.txt"))

    letters, numbers, ccc_ranges = [], [], []
    lower = {}
    decomp = {}
    for lo, hi, fields in rows:
        gc = fields[2]
        if gc.startswith("L"):
            letters.append((lo, hi))
        elif gc.startswith("N"):
            numbers.append((lo, hi))
        ccc = int(fields[3])
        if ccc != 0:
            for cp in range(lo, hi + 1):
                if ccc_ranges and ccc_ranges[-1][1] == cp - 1 and ccc_ranges[-1][2] == ccc:
                    ccc_ranges[-1] = (ccc_ranges[-1][0], cp, ccc)
                else:
                    ccc_ranges.append((cp, cp, ccc))
        if lo == hi:
            if fields[13]:
                lower[lo] = [int(fields[13], 16)]
            if fields[5] and not fields[5].startswith("<"):
                decomp[lo] = [int(x, 16) for x in fields[5].split()]

    # SpecialCasing: unconditional lower-case mappings replace the simple ones (U+0130 -> i + U+0307).
    with open(os.path.join(ucd, "SpecialCasing.txt"), encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = [p.strip() for p in line.split(";")]
            if len(parts) > 4 and parts[4]:
                continue  # conditional (Final_Sigma handled in code; language-specific ignored)
            cp = int(parts[0], 16)
            mapped = [int(x, 16) for x in parts[1].split()]
            if mapped != [cp]:
                lower[cp] = mapped

    exclusions = parse_ranges(os.path.join(ucd, "DerivedNormalizationProps.txt"),
                              "Full_Composition_Exclusion")
    excluded = set()
    for lo, hi in exclusions:
        excluded.update(range(lo, hi + 1))
    compose = []
    for cp, d in decomp.items():
        if len(d) == 2 and cp not in excluded:
            compose.append((d[0], d[1], cp))
    compose.sort()

    white = parse_ranges(os.path.join(ucd, "PropList.txt"), "White_Space")
    core = os.path.join(ucd, "DerivedCoreProperties.txt")
    cased = parse_ranges(core, "Cased")
    ignorable = parse_ranges(core, "Case_Ignorable")

    with open(out_path + ".tmp", "w", encoding="utf-8") as out:
        out.write("// Generated by src/model/clip/gen_unicode_tables.py from %s. Do not edit.\n" % ucd)

        def ranges(name, rs):
            out.write("constexpr CpRange %s[] = {\n" % name)
            for lo, hi in rs:
                out.write("    {0x%X, 0x%X},\n" % (lo, hi))
            out.write("};\n")

        ranges("kLetterRanges", merge(letters))
        ranges("kNumberRanges", merge(numbers))
        ranges("kWhiteSpaceRanges", white)
        ranges("kCasedRanges", cased)
        ranges("kCaseIgnorableRanges", ignorable)
        out.write("constexpr CccRange kCccRanges[] = {\n")
        for lo, hi, c in ccc_ranges:
            out.write("    {0x%X, 0x%X, %d},\n" % (lo, hi, c))
        out.write("};\n")
        out.write("constexpr LowerMapping kLowerMappings[] = {\n")
        for cp in sorted(lower):
            m = lower[cp] + [0] * (3 - len(lower[cp]))
            out.write("    {0x%X, {0x%X, 0x%X, 0x%X}},\n" % (cp, m[0], m[1], m[2]))
        out.write("};\n")
        out.write("constexpr Decomposition kDecompositions[] = {\n")
        for cp in sorted(decomp):
            d = decomp[cp] + [0] * (2 - len(decomp[cp]))
            out.write("    {0x%X, 0x%X, 0x%X},\n" % (cp, d[0], d[1]))
        out.write("};\n")
        out.write("constexpr GraphemeBreakRange kGraphemeBreakRanges[] = {\n")
        for lo, hi, value in grapheme_break(ucd, rows):
            out.write("    {0x%X, 0x%X, Gcb::k%s},\n" % (lo, hi, GCB_NAMES[value].replace("_", "")))
        out.write("};\n")
        ranges("kExtendedPictographicRanges", parse_hex_ranges(EXTENDED_PICTOGRAPHIC))
        ranges("kIncbConsonantRanges", parse_hex_ranges(INCB_CONSONANT))
        ranges("kIncbLinkerRanges", parse_hex_ranges(INCB_LINKER))
        out.write("constexpr Composition kCompositions[] = {\n")
        for a, b, c in compose:
            out.write("    {0x%X, 0x%X, 0x%X},\n" % (a, b, c))
        out.write("};\n")
    os.replace(out_path + ".tmp", out_path)


if __name__ == "__main__":
    main()
