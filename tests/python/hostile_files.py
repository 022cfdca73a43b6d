"""Hostile and malformed input files for the reliability tests (docs/hostile-inputs.md), made from
scratch so that no opaque blob is committed.

    python3 hostile_files.py OUTDIR

writes one file per case into OUTDIR and OUTDIR/manifest.json: a list of
{"name", "file", "kind" ("pt": read as a .pt file, "arch": as an architecture file), "expect"
(a piece of the one-line error; null: the file must load)}. The C++ suite reads them in-process
(tests/cpp/test_hostile_inputs.cpp, where the sanitizers watch), test_hostile_inputs.py through the
`tracetorch` program.
"""
import io
import json
import os
import struct
import sys
import zipfile
import zlib

import torch


def deflate(data):
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def zip_bytes(records):
    """A zip archive written by hand, so that each field can lie. A record is a dict with name, data
    and optionally method (0 stored, 8 deflate), declared_size, crc, flags, and at (the name of an
    earlier record whose local header and data this central directory entry points to)."""
    out, cd, offsets = bytearray(), bytearray(), {}
    for r in records:
        name, data, method = r["name"].encode(), r.get("data", b""), r.get("method", 0)
        payload = deflate(data) if method == 8 else data
        crc, comp = r.get("crc", zlib.crc32(data)), len(payload)
        size, flags = r.get("declared_size", len(data)), r.get("flags", 0)
        if "at" in r:
            offset = offsets[r["at"]]
        else:
            offset = len(out)
            out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, method, 0, 0, crc, comp, size, len(name), 0)
            out += name + payload
        offsets[r["name"]] = offset
        cd += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, flags, method, 0, 0, crc, comp, size,
                          len(name), 0, 0, 0, 0, 0, offset) + name
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(records), len(records), len(cd), len(out), 0)
    return bytes(out + cd + eocd)


def torch_records():
    """The records of a real torch.save file of one small tensor, renamed into folder 'archive'."""
    buf = io.BytesIO()
    torch.save(torch.arange(4.0), buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        return [{"name": "archive/" + n.split("/", 1)[1], "data": z.read(n)} for n in z.namelist()]


def replace(records, name, **changes):
    out = []
    for r in records:
        r = dict(r)
        if r["name"] == name:
            r.update(changes)
        out.append(r)
    return out


def nested(open_text, close_text, depth):
    return open_text * depth + close_text * depth


def arch_doc(model_text):
    return ('{"format": "tt-arch/1", "model": ' + model_text + "}").encode()


def cases():
    base = torch_records()
    names = [r["name"] for r in base]
    pickle = next(r["data"] for r in base if r["name"] == "archive/data.pkl")
    cpu = b"X\x03\x00\x00\x00cpu"
    assert cpu in pickle, "torch.save no longer writes the location as a BINUNICODE 'cpu'"
    meta = pickle.replace(cpu, b"X\x04\x00\x00\x00meta")
    overlapping = base + [{"name": "archive/data/copy%d" % i, "at": "archive/data/0"} for i in range(1000)]
    lie = "declares 3221225472 bytes"
    return [
        # name, file, kind, expected error (None: loads), contents
        ("pt_control", "control.pt", "pt", None, zip_bytes(base)),
        ("pt_meta_storage", "meta.pt", "pt", "would go to the meta device",
         zip_bytes(replace(base, "archive/data.pkl", data=meta))),
        ("pt_version_deflate_3gb", "version_deflate_3gb.pt", "pt", lie + " from",
         zip_bytes(replace(base, "archive/version", method=8, declared_size=3 << 30))),
        ("pt_version_stored_3gb", "version_stored_3gb.pt", "pt", "is stored uncompressed but " + lie,
         zip_bytes(replace(base, "archive/version", declared_size=3 << 30))),
        ("pt_no_version", "no_version.pt", "pt", "no 'archive/version' record",
         zip_bytes([r for r in base if r["name"] != "archive/version"])),
        ("pt_dotdot_entries", "dotdot.pt", "pt", "the archive folder '..' is not a folder name",
         zip_bytes([dict(r, name="../" + r["name"].split("/", 1)[1]) for r in base])),
        ("pt_overlapping_records", "overlapping.pt", "pt", "overlaps the next record", zip_bytes(overlapping)),
        ("pt_duplicate_names", "duplicate.pt", "pt", "'ARCHIVE/DATA.PKL' appears twice",
         zip_bytes(base + [dict(base[names.index("archive/data.pkl")], name="ARCHIVE/DATA.PKL")])),
        ("pt_unsupported_version", "version99.pt", "pt", "format version '99",
         zip_bytes(replace(base, "archive/version", data=b"99\n"))),
        ("pt_encrypted", "encrypted.pt", "pt", "is encrypted", zip_bytes(replace(base, "archive/data.pkl", flags=1))),
        ("pt_version_bad_crc", "version_crc.pt", "pt", "'archive/version' fails its CRC check",
         zip_bytes(replace(base, "archive/version", crc=zlib.crc32(b"4\n")))),
        ("arch_control", "control.json", "arch", None,
         arch_doc('{"type": "Sequential", "children": [{"type": "Linear", "in_features": 2, "out_features": 3}]}')),
        ("arch_nested_sequentials", "nested_sequentials.json", "arch", "nested deeper than 100 levels",
         arch_doc(nested('{"type": "Sequential", "children": [', "]}", 12000))),
        ("arch_nested_arrays", "nested_arrays.json", "arch", "model.children[0][0][0][0]",
         arch_doc('{"type": "Sequential", "children": [' + nested("[", "]", 100000) + "]}")),
        ("arch_type_not_string", "type_not_string.json", "arch", "model.type: the root node must be a Sequential",
         arch_doc('{"type": 1}')),
        ("arch_huge_integer", "huge_integer.json", "arch",
         "model.children[0].num_neurons: 18446744073709551615 is out of range",
         arch_doc('{"type": "Sequential", "children": [{"type": "snn.LIB", "num_neurons": 18446744073709551615}]}')),
        ("arch_directory", "a_directory", "arch", "is a directory, not an architecture file", None),
    ]


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    manifest = []
    for name, file, kind, expect, data in cases():
        path = os.path.join(out, file)
        if data is None:
            os.makedirs(path, exist_ok=True)
        else:
            with open(path, "wb") as f:
                f.write(data)
        manifest.append({"name": name, "file": file, "kind": kind, "expect": expect})
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
