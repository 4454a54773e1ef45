#!/usr/bin/env python3
"""seeds.py - writes the committed seed corpora of the fuzz harnesses (tests/fuzz/corpus/<target>/):
valid .npy images of every dtype, byte order, memory order and format version; the built-in case
list, its lines one by one and a few hand-written case files; encoded validation calls in the
byte format fuzz_sdpa_validate.c decodes; safetensors files and config.json texts (one harness
reads both). Rerun after changing a harness's input format:
    python3 tests/fuzz/seeds.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# ---- .npy ---------------------------------------------------------------------------------------

def npy(major, header, data, pad=True):
    """magic, version, header length (2 bytes for 1.0, 4 after), header padded to 64, data"""
    pre = 10 if major == 1 else 12
    if pad:
        header += ' ' * ((-(pre + len(header) + 1)) % 64) + '\n'
    hl = struct.pack('<H' if major == 1 else '<I', len(header))
    return b'\x93NUMPY' + bytes([major, 0]) + hl + header.encode() + data


def npy_seeds():
    f4 = struct.pack('<6f', 0.5, -1.0, 2.0, float('inf'), float('nan'), 1e-40)
    items = [
        ('f4_c_2x3_v1', 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f4),
        ('f4_fortran_3x2_v1', 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 2), }", f4),
        ('f4_be_6_v2', 2, "{'descr': '>f4', 'fortran_order': False, 'shape': (6,), }",
         struct.pack('>6f', 1, 2, 3, 4, 5, 6)),
        ('f2_2x2_v3', 3, "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 2), }",
         struct.pack('<4H', 0x3c00, 0xbc00, 0x7c00, 0x0001)),
        ('f8_scalar_v1', 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }",
         struct.pack('<d', 3.25)),
        ('f8_be_1x2x2_v1', 1, "{'descr': '>f8', 'fortran_order': True, 'shape': (1, 2, 2), }",
         struct.pack('>4d', 1.0, 1e300, -0.0, 0.1)),
        ('u2_bf16_4_v1', 1, "{'descr': '<u2', 'fortran_order': False, 'shape': (4,), }",
         struct.pack('<4H', 0x3f80, 0xbfc0, 0x7f80, 0x7fc1)),
        ('u1_3_v1', 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }",
         b'\x00\x01\xff'),
        ('b1_2x2_v2', 2, "{'descr': '|b1', 'fortran_order': True, 'shape': (2, 2), }",
         b'\x01\x00\x00\x01'),
        ('empty_0x4_v1', 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4), }", b''),
        ('long_suffix_v1', 1, "{'descr':'<f4','fortran_order':False,'shape':(2L,),}",
         struct.pack('<2f', 1, 2)),
        ('five_dims_v1', 1, "{'shape': (1, 2, 1, 2, 1), 'descr': '|u1', 'fortran_order': False}",
         b'\x01\x02\x03\x04'),
    ]
    for name, major, header, data in items:
        write('npy', name + '.npy', npy(major, header, data))
    write('npy', 'unpadded_v1.npy',
          npy(1, '{"descr":"<f4","fortran_order":False,"shape":(1,)}', struct.pack('<f', 7), False))


# ---- case names ---------------------------------------------------------------------------------

def case_seeds():
    path = os.path.join(HERE, '..', 'cases', 'sdpa.cases')
    with open(path) as f:
        text = f.read()
    write('cases', 'sdpa_cases_full.txt', text)
    lines = [l for l in text.splitlines() if l.strip() and not l.startswith('#')]
    for i, line in enumerate(lines[::8]):
        write('cases', 'line_%03d.txt' % (i * 8), line + '\n')
    write('cases', 'forms.txt',
          '# every token once, in other orders and spellings\n'
          'sdpa lse d80 b2 sq3 skv5 hq4 hkv2 causal dt=bf16 mask_bool=- mask_add=hs fill=stress '
          'wl=7 cap=2.5\n'
          '@quick sdpa b1 sq113 skv512 hq8 hkv2 dk64 dv64 causal=br wl=16 cap=50 mask_add=bsh '
          'dt=f16:f16:f32 layout=bhsd lse   # trailing comment\n'
          '\t@quick\tsdpa sq7 skv9 align=tl wr=3 scale=0.125 layout=cache\r\n'
          '\n   \n'
          'sdpa b1099511627776 sq1099511627776 skv1 wl=1099511627776 wr=0 scale=-1e30\n')
    write('cases', 'bad_line.txt', 'sdpa b1 sq1\nsdpa sq0\n')
    write('cases', 'bad_tag.txt', '@slow sdpa b1\n')


# ---- validation calls (the byte format of fuzz_sdpa_validate.c) --------------------------------------

def view(kind=0, dtype=0, layout=0, pad=None, base=0, offset=None, bcast=None):
    """bytes of one view: [mask broadcast], kind, dtype selector, layout [pad], perturb, base,
    offset selector [value]"""
    b = bytes([bcast]) if bcast is not None else b''
    b += bytes([kind, dtype, layout])
    if pad is not None:
        b += bytes([pad])
    b += bytes([0]) + struct.pack('<H', base)
    b += bytes([0]) if offset is None else bytes([130, offset // 2])
    return b


def sizes(B=1, Sq=2, Skv=3, Hkv=1, group=2, Dk=4, Dv=4):
    """rd_int selectors of the small ranges: B, Hkv, group in 1..3, Sq, Skv in 1..9, D in 1..8"""
    return bytes([B - 1, Sq - 1, Skv - 1, Hkv - 1, group - 1, Dk - 1, Dv - 1])


def desc(flags=0, extra=b''):
    """flags: 1 causal, 4 top-left, 16 window_left, 32 window_right; scale/softcap usual (0)"""
    return bytes([flags]) + extra + bytes([0, 0])


def validate_seeds():
    data = struct.pack('<16f', *[(i * 0.37) % 2 - 1 for i in range(16)])
    plain = [view(base=b) for b in (0, 4096, 8192, 12288, 16384)]
    write('sdpa_validate', 'ok_host_lse', desc() + sizes() + bytes([1]) + b''.join(plain) + data)
    bufs = [view(kind=3, base=b) for b in (0, 4096, 8192, 12288)]
    masks = [view(bcast=5, base=20480), view(bcast=0, base=24576)]
    write('sdpa_validate', 'ok_buffer_causal_masks',
          desc(1) + sizes(B=2, Sq=3, Skv=5) + bytes([6]) + b''.join(bufs) + b''.join(masks) + data)
    write('sdpa_validate', 'ok_bhsd_window',
          desc(16 | 32 | 4, bytes([2, 1])) + sizes(Hkv=2, Dk=8, Dv=2) + bytes([0]) +
          b''.join(view(layout=1, base=b) for b in (0, 4096, 8192, 12288)) + data)
    write('sdpa_validate', 'ok_f16_padded',
          desc() + sizes() + bytes([0]) +
          b''.join(view(dtype=129, layout=2, pad=3, base=b) for b in (0, 4096, 8192, 12288)) +
          data)
    write('sdpa_validate', 'alias_out_q', desc() + sizes() + bytes([0]) +
          b''.join(view(base=b) for b in (0, 4096, 8192, 0)))
    write('sdpa_validate', 'foreign_buffer', desc() + sizes() + bytes([0]) +
          b''.join(view(kind=k, base=b) for k, b in ((0, 0), (5, 0), (0, 8192), (0, 12288))))
    write('sdpa_validate', 'huge_offset', desc() + sizes() + bytes([0]) +
          view(base=0, offset=None) + view(base=4096) + view(base=8192) +
          bytes([0, 0, 0, 0]) + struct.pack("<H", 12288) + bytes([234]))
    write('sdpa_validate', 'null_q', desc() + sizes() + bytes([0x10, 1]) +
          b''.join(view(base=b) for b in (0, 4096, 8192, 12288)))


# ---- safetensors and config.json (one harness reads the bytes as both) ------------------------

def safetensors(entries, data, metadata=None):
    """8-byte little-endian header length, the JSON header padded to 8 bytes, the data"""
    import json
    hdr = dict(entries)
    if metadata is not None:
        hdr = {'__metadata__': metadata, **hdr}
    text = json.dumps(hdr, separators=(',', ':'))
    text += ' ' * (-len(text) % 8)
    return struct.pack('<Q', len(text)) + text.encode() + data


def safetensors_seeds():
    t = lambda dtype, shape, b, e: {'dtype': dtype, 'shape': shape, 'data_offsets': [b, e]}
    write('safetensors', 'f32_two', safetensors(
        {'bert.pooler.dense.weight': t('F32', [2, 2], 0, 16),
         'classifier.bias': t('F32', [2], 16, 24)},
        struct.pack('<6f', 0.5, -1.0, 2.0, float('inf'), float('nan'), 1e-40), {'format': 'pt'}))
    write('safetensors', 'mixed_dtypes', safetensors(
        {'u': t('U8', [1], 0, 1), 'h': t('F16', [2], 1, 5), 'b': t('BF16', [1, 1], 5, 7),
         'd': t('F64', [], 7, 15), 'i': t('I64', [1], 15, 23), 'q': t('F8_E4M3', [2], 23, 25),
         'e': t('BOOL', [0, 3], 25, 25)},
        b'\x07' + struct.pack('<2H', 0x3c00, 0x7c00) + struct.pack('<H', 0x3f80) +
        struct.pack('<d', 0.1) + struct.pack('<q', -1) + b'\x38\xb8'))
    write('safetensors', 'empty', safetensors({}, b''))
    write('safetensors', 'metadata_only', safetensors({}, b'', {'format': 'pt', 'note': 'x'}))
    write('safetensors', 'bad_overlap', safetensors(
        {'a': t('F32', [2], 0, 8), 'b': t('F32', [2], 4, 12)}, bytes(12)))
    write('safetensors', 'config_bert_base.json', """{
  "architectures": ["BertForMaskedLM"], "attention_probs_dropout_prob": 0.1,
  "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768,
  "initializer_range": 0.02, "intermediate_size": 3072, "layer_norm_eps": 1e-12,
  "max_position_embeddings": 512, "model_type": "bert", "num_attention_heads": 12,
  "num_hidden_layers": 12, "pad_token_id": 0, "position_embedding_type": "absolute",
  "type_vocab_size": 2, "use_cache": true, "vocab_size": 30522
}
""")
    write('safetensors', 'config_labels.json',
          '{"hidden_size": 64, "num_attention_heads": 4, "num_labels": 5, '
          '"id2label": {"0": "neg", "1": "pos"}, "label2id": {"neg": 0, "pos": 1}}')


if __name__ == '__main__':
    npy_seeds()
    case_seeds()
    validate_seeds()
    safetensors_seeds()
