"""Pretrained weights given by URL: where mmengine caches them, and one clear error offline.

The paper configs start from ImageNet weights named by URL scheme
(``model.segmentor.pretrained='open-mmlab://resnet101_v1c'``). mmengine's
``CheckpointLoader`` maps such a name to an ``https://`` URL and hands it to
torch's ``load_state_dict_from_url``, which reads
``<torch.hub.get_dir()>/checkpoints/<file name of the URL>`` if it exists and
downloads it there otherwise. On a machine without internet access the
download fails with a bare ``urllib.error.URLError`` from deep inside
mmengine, which names neither the file nor what to do.

Importing this module (ael_mmseg's ``__init__`` does, so every config with
``custom_imports=dict(imports=['ael_mmseg'])`` has it) re-registers mmengine's
remote schemes (``http://``, ``https://``, ``torchvision://``,
``modelzoo://``, ``open-mmlab://``, ``openmmlab://``, ``mmcls://``) with
wrappers around the stock loaders. A successful load is the stock one; a
failed download raises :class:`WeightsDownloadError` (a ``URLError``) whose
message names the weights, their URL, the file and folder to put them in, the
command that fetches them on a machine with access
(``tools/misc/prefetch_weights.py``), and the config keys that take a local
path instead.

:func:`weights_in_config`, :func:`resolve_weights_url` and
:func:`cached_weights_path` are what ``tools/misc/prefetch_weights.py`` uses
to fill that cache from a login node.
"""
import functools
import http.client
import os.path as osp
import socket
import urllib.error
from typing import Any, Callable, List, Optional, Tuple
from urllib.parse import urlparse

import torch
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

# The schemes mmengine 0.10 resolves to a download, by the stock loader that serves them.
REMOTE_SCHEMES = {
    'http://': 'load_from_http',
    'https://': 'load_from_http',
    'torchvision://': 'load_from_torchvision',
    'modelzoo://': 'load_from_torchvision',
    'open-mmlab://': 'load_from_openmmlab',
    'openmmlab://': 'load_from_openmmlab',
    'mmcls://': 'load_from_mmcls',
}
# What urllib / http.client raise when a download cannot be made or is cut off
# (URLError covers HTTPError and refused, unreachable or unresolvable hosts).
DOWNLOAD_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError,
                   TimeoutError, socket.timeout)
LOCAL_PATH_KEYS = ('model.segmentor.pretrained (ael_mmseg configs), model.pretrained '
                   "(a plain mmseg segmentor), or a backbone's "
                   "init_cfg=dict(type='Pretrained', checkpoint=...)")


class WeightsDownloadError(urllib.error.URLError):
    """A weights download failed; the message says how to provide the file offline.

    Subclasses ``URLError``, what the stock loaders raise, so that code catching
    that keeps working. ``weights`` is the name as the config gives it, ``url``
    the URL it resolves to, ``path`` the file mmengine reads it from.
    """

    def __init__(self, weights: str, url: Optional[str], path: Optional[str],
                 reason: Any) -> None:
        super().__init__(reason)
        self.weights, self.url, self.path = weights, url, path
        self.message = download_failure_message(weights, url, path, reason)

    def __str__(self) -> str:
        return self.message


def weights_cache_dir() -> str:
    """The folder mmengine's URL loaders read from and download into.

    ``torch.hub.get_dir()/checkpoints``: mmengine calls
    ``load_state_dict_from_url`` without ``model_dir``. ``TORCH_HOME`` moves it.
    """
    return osp.join(torch.hub.get_dir(), 'checkpoints')


def cached_weights_path(url: str) -> str:
    """The file mmengine reads ``url`` from: the URL's file name in :func:`weights_cache_dir`."""
    return osp.join(weights_cache_dir(), osp.basename(urlparse(url).path))


def is_remote(weights: str) -> bool:
    """Whether mmengine downloads ``weights`` (a URL or URL scheme name), not reads a file."""
    return weights.startswith(tuple(REMOTE_SCHEMES))


def resolve_weights_url(weights: str) -> Optional[str]:
    """The URL mmengine downloads for ``weights``, by mmengine's own tables.

    ``open-mmlab://name`` goes through ``get_external_models()`` (mmengine's
    ``hub/openmmlab.json``, updated by ``$MMENGINE_HOME/open_mmlab.json``) and
    its deprecated-name table; ``torchvision://`` / ``modelzoo://`` through
    ``get_torchvision_models()`` (needs torchvision); ``mmcls://`` through
    ``get_mmcls_models()``. None for an ``open-mmlab://`` name that mmengine
    maps to a file under its home folder (nothing to download).

    Raises:
        KeyError: the name is not in mmengine's table.
        ValueError: ``weights`` is not a remote name.
    """
    if weights.startswith(('http://', 'https://')):
        return weights
    if weights.startswith(('torchvision://', 'modelzoo://')):
        return mmengine_checkpoint.get_torchvision_models()[weights.split('://', 1)[1]]
    if weights.startswith(('open-mmlab://', 'openmmlab://')):
        name = weights.split('://', 1)[1]
        name = mmengine_checkpoint.get_deprecated_model_names().get(name, name)
        url = mmengine_checkpoint.get_external_models()[name]
        return url if url.startswith(('http://', 'https://')) else None
    if weights.startswith('mmcls://'):
        return mmengine_checkpoint.get_mmcls_models()[weights[len('mmcls://'):]]
    raise ValueError(f'{weights!r} is not a URL or a URL scheme mmengine downloads')


def download_failure_message(weights: str, url: Optional[str], path: Optional[str],
                             reason: Any) -> str:
    """The text of :class:`WeightsDownloadError`."""
    source = weights if url is None or url == weights else f'{weights} ({url})'
    lines = [f'Could not download the pretrained weights {source}: {reason}.',
             'Without internet access (e.g. on a cluster compute node), either']
    if path is not None:
        lines += [f'  - put the file at {path}',
                  f'    (file name {osp.basename(path)} in the folder {osp.dirname(path)}: '
                  "torch.hub.get_dir()/checkpoints, where mmengine looks before downloading; "
                  'TORCH_HOME moves it). On a machine with internet access, '
                  '`python tools/misc/prefetch_weights.py CONFIG` downloads every weights '
                  'file of CONFIG there;',
                  f'  - or set a local path instead of {weights}: {LOCAL_PATH_KEYS}, '
                  f'e.g. --cfg-options model.segmentor.pretrained=/path/to/'
                  f'{osp.basename(path)}']
    else:
        lines += [f'  - download it on a machine with internet access and set its local path '
                  f'instead of {weights}: {LOCAL_PATH_KEYS}']
    return '\n'.join(lines)


def _resolve_for_message(weights: str) -> Tuple[Optional[str], Optional[str]]:
    try:
        url = resolve_weights_url(weights)
    except Exception:  # the message must not fail where the download did
        return None, None
    return url, (cached_weights_path(url) if url is not None else None)


def offline_aware(stock_loader: Callable) -> Callable:
    """Wrap a stock mmengine URL loader: a failed download raises :class:`WeightsDownloadError`."""

    @functools.wraps(stock_loader)  # keeps __name__: mmengine logs it as the backend name
    def loader(filename: str, map_location: Any = None) -> Any:
        try:
            return stock_loader(filename, map_location=map_location)
        except WeightsDownloadError:
            raise
        except DOWNLOAD_ERRORS as error:
            url, path = _resolve_for_message(filename)
            # HTTPError's text has the status code; other URLErrors carry the socket error.
            reason = (error.reason if isinstance(error, urllib.error.URLError)
                      and not isinstance(error, urllib.error.HTTPError) else error)
            raise WeightsDownloadError(filename, url, path, reason) from None

    loader.ael_mmseg_stock_loader = stock_loader
    return loader


def register_offline_aware_loaders() -> List[str]:
    """Re-register mmengine's remote schemes with :func:`offline_aware` wrappers (idempotent)."""
    wrapped = []
    for prefix in REMOTE_SCHEMES:
        stock = CheckpointLoader._schemes.get(prefix)
        if stock is None or hasattr(stock, 'ael_mmseg_stock_loader'):
            continue
        CheckpointLoader.register_scheme(prefixes=prefix, loader=offline_aware(stock), force=True)
        wrapped.append(prefix)
    return wrapped


def weights_in_config(cfg: Any) -> List[Tuple[str, str]]:
    """Every pretrained-weights reference of a config, as (key path, value).

    The keys mmengine and mmseg load weights from: in ``model``, ``pretrained``
    (any segmentor or backbone) and ``checkpoint`` of an ``init_cfg`` of type
    ``Pretrained``; the top-level ``load_from``. Other top-level variables are
    left out: a base config's helper variables (ael_mmseg's model bases define
    ``segmentor = dict(pretrained=...)`` and put it into ``model``) stay in the
    merged config even where ``model`` overrides them. Values that are None
    are left out.
    """
    found: List[Tuple[str, str]] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if node.get('type') == 'Pretrained' and isinstance(node.get('checkpoint'), str):
                found.append((f'{path}.checkpoint', node['checkpoint']))
            for key, value in node.items():
                child = f'{path}.{key}' if path else str(key)
                if key == 'pretrained' and isinstance(value, str):
                    found.append((child, value))
                else:
                    walk(value, child)
        elif isinstance(node, (list, tuple)):
            for index, value in enumerate(node):
                walk(value, f'{path}.{index}')

    walk(cfg.get('model'), 'model')
    if isinstance(cfg.get('load_from'), str):
        found.append(('load_from', cfg['load_from']))
    return found


register_offline_aware_loaders()
