"""Crafted checkpoints against torch's weights-only loader with the plugin imported.

Each payload is written as raw pickle opcodes (protocol 2, what ``torch.save``
writes), in both of torch's file formats, and loaded through every loader a
user's run goes through. Each must be refused and leave no trace: no marker
file, ``builtins`` unchanged, ``HistoryBuffer``'s class-level statistics
unchanged.
"""
import builtins
import io
import pickle
import struct
import sys
import zipfile

import numpy as np
import pytest
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

import ael_mmseg  # noqa: F401  (what `custom_imports` does)
from ael_mmseg.utils.compat import SCOPED_LOADING, load_checkpoint_file

NUMPY_CORE = 'numpy._core.multiarray' if np.__version__ >= '2' else 'numpy.core.multiarray'


# ------------------------------------------------------------ pickle opcodes
def glob(module: str, name: str) -> bytes:
    return b'c' + f'{module}\n{name}\n'.encode()


def text(value: str) -> bytes:
    data = value.encode()
    return b'X' + struct.pack('<I', len(data)) + data


def integer(value: int) -> bytes:
    return b'J' + struct.pack('<i', value)


def call(func: bytes, *args: bytes) -> bytes:
    return func + b'(' + b''.join(args) + b't' + b'R'


def a_tuple(*items: bytes) -> bytes:
    return b'(' + b''.join(items) + b't'


def getattr_(obj: bytes, name: str) -> bytes:
    return call(glob('builtins', 'getattr'), obj, text(name))


BUILTINS_MODULE = getattr_(glob('builtins', 'getattr'), '__self__')


def rebuild_from_type(func: bytes, *args: bytes) -> bytes:
    """``torch._tensor._rebuild_from_type_v2(func, Tensor, args, {})``: calls ``func(*args)``."""
    return call(glob('torch._tensor', '_rebuild_from_type_v2'), func, glob('torch', 'Tensor'),
                a_tuple(*args), b'}')


def empty_array() -> bytes:
    """An array as numpy's own pickles start it (data would come with BUILD)."""
    return call(glob(NUMPY_CORE, '_reconstruct'), glob('numpy', 'ndarray'), a_tuple(integer(0)),
                b'C\x01b')


def checkpoint(value: bytes) -> bytes:
    """``{'state_dict': value}`` as a whole pickle."""
    return b'\x80\x02}' + text('state_dict') + value + b's.'


def payloads(marker: str):
    write_marker = f'open({marker!r}, "w").write("pwned")'
    return {
        'exec': rebuild_from_type(getattr_(BUILTINS_MODULE, 'exec'), text(write_marker)),
        'eval': rebuild_from_type(getattr_(BUILTINS_MODULE, 'eval'), text(write_marker)),
        'os.system': rebuild_from_type(getattr_(BUILTINS_MODULE, 'eval'),
                                       text(f'__import__("os").system("touch {marker}")')),
        'os.system as a global': call(glob('os', 'system'), text(f'touch {marker}')),
        'ndarray.tofile': rebuild_from_type(getattr_(empty_array(), 'tofile'), text(marker)),
        'ndarray.tofile unbound': rebuild_from_type(getattr_(glob('numpy', 'ndarray'), 'tofile'),
                                                    empty_array(), text(marker)),
        'builtins.__dict__ item': (getattr_(BUILTINS_MODULE, '__dict__')
                                   + text('ael_planted') + text('x') + b's'),
        'HistoryBuffer class dict item': (
            getattr_(glob('mmengine.logging.history_buffer', 'HistoryBuffer'),
                     '_statistics_methods')
            + text('min') + getattr_(glob('mmengine.logging.history_buffer', 'HistoryBuffer'),
                                     'max') + b's'),
        'HistoryBuffer __setstate__ swaps statistics': history_buffer(
            {'min': 'max', 'max': 'min'}),
        'HistoryBuffer __setstate__ adds a statistic': history_buffer({'planted': 'min'}),
        'huge allocation by _reconstruct': call(
            glob(NUMPY_CORE, '_reconstruct'), glob('numpy', 'ndarray'),
            a_tuple(integer(2**30), integer(2**30)), b'C\x01b'),
        'huge allocation by ndarray()': call(glob('numpy', 'ndarray'),
                                             a_tuple(integer(2**30), integer(2**30))),
        'huge allocation by dtype': call(glob('numpy', 'dtype'),
                                         a_tuple(text('f8'), a_tuple(integer(2**30))),
                                         ),
    }


def history_buffer(statistics: dict) -> bytes:
    """A HistoryBuffer whose state maps statistic names to other class methods."""
    cls = glob('mmengine.logging.history_buffer', 'HistoryBuffer')
    state = b'}' + text('max_length') + integer(10) + text('_log_history') + empty_array()
    state += text('_count_history') + empty_array() + text('statistics_methods') + b'}'
    for name, method in statistics.items():
        state += text(name) + getattr_(cls, method) + b's'
    state += b's'  # statistics_methods into the state
    return cls + b')\x81' + state + b'b'


# -------------------------------------------------------------- file formats
def as_zip(data_pkl: bytes) -> bytes:
    """torch's zip format with ``data_pkl`` as the pickle (records of a real save)."""
    buffer = io.BytesIO()
    torch.save({}, buffer)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source, \
            zipfile.ZipFile(out, 'w', zipfile.ZIP_STORED) as target:
        for name in source.namelist():
            target.writestr(name, data_pkl if name.endswith('/data.pkl') else source.read(name))
    return out.getvalue()


def as_legacy(data_pkl: bytes) -> bytes:
    """torch's legacy format: magic number, protocol, sys info, the pickle, storage keys."""
    from torch.serialization import MAGIC_NUMBER, PROTOCOL_VERSION
    sys_info = dict(protocol_version=PROTOCOL_VERSION, little_endian=sys.byteorder == 'little',
                    type_sizes=dict(short=2, int=4, long=4))
    return b''.join(pickle.dumps(part, protocol=2) for part in
                    (MAGIC_NUMBER, PROTOCOL_VERSION, sys_info)) + data_pkl + pickle.dumps(
                        [], protocol=2)


FORMATS = {'zip': as_zip, 'legacy': as_legacy}


def _model_load(path):
    return load_checkpoint(torch.nn.Linear(1, 1), path, map_location='cpu')


LOADERS = {
    'torch.load(weights_only=True)': lambda path: torch.load(path, weights_only=True),
}
if SCOPED_LOADING:
    # Where torch can allow-list (>= 2.5) the plugin's scope is these loaders; torch.load's
    # default is weights-only from 2.6 on.
    LOADERS.update({
        'torch.load': torch.load,
        'CheckpointLoader.load_checkpoint': CheckpointLoader.load_checkpoint,
        'mmengine.runner.load_checkpoint': _model_load,
        'ael_mmseg load_checkpoint_file': load_checkpoint_file,
    })
if torch.__version__ < '2.6':
    LOADERS.pop('torch.load', None)  # torch's default there unpickles everything

PAYLOAD_NAMES = sorted(payloads('m'))


@pytest.mark.parametrize('file_format', sorted(FORMATS))
@pytest.mark.parametrize('loader', sorted(LOADERS))
@pytest.mark.parametrize('payload', PAYLOAD_NAMES)
def test_crafted_checkpoint_is_refused_without_side_effects(tmp_path, payload, loader,
                                                            file_format):
    marker = tmp_path / 'marker'
    path = tmp_path / 'crafted.pth'
    path.write_bytes(FORMATS[file_format](checkpoint(payloads(str(marker))[payload])))
    builtin_names = set(vars(builtins))
    statistics = dict(HistoryBuffer._statistics_methods)
    with pytest.raises(pickle.UnpicklingError):
        LOADERS[loader](str(path))
    assert not marker.exists()
    assert set(vars(builtins)) == builtin_names
    assert HistoryBuffer._statistics_methods == statistics
    assert all(getattr(HistoryBuffer, name) is HistoryBuffer.__dict__[name]
               for name in ('min', 'max', 'current', 'mean'))


def test_the_payload_builder_makes_loadable_pickles(tmp_path):
    """Control: the same opcodes around allowed objects load, so refusals above are real."""
    for file_format, write in FORMATS.items():
        path = tmp_path / f'benign_{file_format}.pth'
        path.write_bytes(write(checkpoint(a_tuple(text('a'), integer(3)))))
        assert torch.load(str(path), weights_only=True) == {'state_dict': ('a', 3)}


@pytest.mark.skipif(not SCOPED_LOADING, reason='torch < 2.5 has no safe_globals to scope')
def test_history_buffers_as_mmengine_writes_them_load(tmp_path):
    """Control: a genuine HistoryBuffer (the statistics a real checkpoint holds) loads."""
    buffer = HistoryBuffer()
    buffer.update(0.5)
    buffer.update(1.5)
    path = tmp_path / 'hub.pth'
    torch.save({'message_hub': {'log_scalars': {'loss': buffer}},
                'best_score': np.float64(0.25)}, path)
    loaded = load_checkpoint_file(str(path))
    restored = loaded['message_hub']['log_scalars']['loss']
    assert type(restored) is HistoryBuffer and restored.mean() == 1.0
    assert loaded['best_score'] == 0.25
    with pytest.raises(pickle.UnpicklingError):  # outside the plugin's scope: stock torch
        torch.load(str(path), weights_only=True)
