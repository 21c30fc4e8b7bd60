"""Download the pretrained weights of configs into the cache mmengine reads, for offline training.

Run it where there is internet access (a cluster's login node), with the
TORCH_HOME the training jobs will have (the cache is
``torch.hub.get_dir()/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``)::

    python tools/misc/prefetch_weights.py configs/ael configs/ael_baselines configs/ael_ablations

CONFIG is a config file, a folder (every ``*.py`` under it, ``_base_`` folders
left out), a glob pattern, or ``ael_mmseg::<path under configs>`` for the
configs shipped in an installed wheel. Each config is read with mmengine's
``Config`` (``_base_`` chains followed); its weights are the values of
``pretrained``, of ``checkpoint`` in an ``init_cfg`` of type ``Pretrained``
and of ``load_from``. A URL or URL scheme name (``open-mmlab://``,
``torchvision://``, ``mmcls://``, ``http(s)://``) is resolved to its URL by
mmengine's own tables and downloaded once, to the file name mmengine reads.
A table shows each weights name, its URL, the local file and one status:

    downloaded  fetched now            cached   already there, not fetched again
    local       a file path, nothing to fetch (``missing`` appended if the file
                is not there, which training will report)
    failed      with the reason        missing  not cached (--check)

Exit status 1 if any download failed, any URL name is unknown to mmengine, a
config could not be read, or (with --check) a file is not cached; the failures
are listed last.
"""
import argparse
import glob
import os
import os.path as osp
import sys
from typing import Dict, List, Tuple

import torch
from mmengine.config import Config

import ael_mmseg
from ael_mmseg.utils.weights_download import (cached_weights_path, is_remote, resolve_weights_url,
                                              weights_cache_dir, weights_in_config)

PACKAGE_PREFIX = 'ael_mmseg::'


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Download the pretrained weights of configs into the cache mmengine reads.')
    parser.add_argument('configs', nargs='+', metavar='CONFIG',
                        help='config file, folder, glob pattern or ael_mmseg::<path>')
    parser.add_argument('--check', action='store_true',
                        help='download nothing; exit 1 if a remote weights file is not cached')
    return parser.parse_args(argv)


def expand_configs(specs: List[str]) -> List[str]:
    """Config files named by files, folders, glob patterns and ``ael_mmseg::`` paths."""
    files: List[str] = []
    for spec in specs:
        if spec.startswith(PACKAGE_PREFIX):
            spec = osp.join(osp.dirname(ael_mmseg.__file__), '.mim', 'configs',
                            spec[len(PACKAGE_PREFIX):])
        if osp.isdir(spec):
            for dirpath, dirnames, filenames in os.walk(spec):
                dirnames[:] = sorted(d for d in dirnames if d not in ('_base_', '__pycache__'))
                files += [osp.join(dirpath, f) for f in sorted(filenames) if f.endswith('.py')]
        elif osp.isfile(spec):
            files.append(spec)
        else:
            matches = sorted(glob.glob(spec, recursive=True))
            files += matches if matches else [spec]  # a missing file fails when read
    return list(dict.fromkeys(files))


def collect_weights(config_files: List[str]) -> Tuple[Dict[str, List[str]], List[str]]:
    """{weights: [config files]} and the read errors."""
    weights: Dict[str, List[str]] = {}
    errors = []
    for path in config_files:
        try:
            cfg = Config.fromfile(path)
        except Exception as error:  # report every config, not only the first bad one
            errors.append(f'{path}: cannot read the config: {type(error).__name__}: {error}')
            continue
        for _, value in weights_in_config(cfg):
            weights.setdefault(value, []).append(path)
    return weights, errors


def prefetch(weights: str, check: bool) -> Tuple[str, str, str, bool]:
    """(url, local file, status, ok) of one weights name."""
    if not is_remote(weights):
        status = 'local' if osp.isfile(weights) else 'local, missing'
        return '-', weights, status, True
    try:
        url = resolve_weights_url(weights)
    except (KeyError, ImportError) as error:
        return '?', '-', f'failed: mmengine cannot resolve it ({type(error).__name__}: {error})', \
            False
    if url is None:  # an open-mmlab:// name mapped to a file under mmengine's home
        return '-', '(mmengine home)', 'local', True
    path = cached_weights_path(url)
    if osp.isfile(path):
        return url, path, 'cached', True
    if check:
        return url, path, 'missing', False
    os.makedirs(osp.dirname(path), exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, path, progress=sys.stderr.isatty())
    except Exception as error:  # urllib, http.client and socket errors alike
        return url, path, f'failed: {type(error).__name__}: {error}', False
    return url, path, 'downloaded', True


def format_table(rows: List[Tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return '\n'.join('  '.join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                     for row in rows)


def main(argv=None) -> int:
    args = parse_args(argv)
    config_files = expand_configs(args.configs)
    weights, errors = collect_weights(config_files)
    rows = [('WEIGHTS', 'URL', 'LOCAL FILE', 'STATUS', 'CONFIGS')]
    failed = list(errors)
    for name in sorted(weights):
        url, path, status, ok = prefetch(name, args.check)
        rows.append((name, url, path, status, str(len(weights[name]))))
        if not ok:
            failed.append(f'{name} ({url}): {status}')
    print(f'{len(config_files)} configs, {len(weights)} distinct weights; '
          f'cache folder: {weights_cache_dir()}')
    if len(rows) > 1:
        print(format_table(rows))
    if failed:
        print(f'\n{len(failed)} failed:', file=sys.stderr)
        for line in failed:
            print(f'  {line}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
