"""Labeled + unlabeled data of one semi-supervised training run."""
import copy
import os.path as osp
from typing import NamedTuple, Optional, Sequence

import numpy as np
from mmengine.dataset import Compose
from mmseg.registry import DATASETS
from mmseg.utils import ConfigType
from torch.utils.data import Dataset

from ael_mmseg.utils.keyed_random import seed_host_globals


class SampleKey(NamedTuple):
    """One sample of a step, as :class:`SemiSegSampler` yields it.

    Attributes:
        role (str): ``sup``, ``sup_paste``, ``unsup`` or ``unsup_source``.
        index (int): Index into the role's dataset.
        acm_class (int): The class ACM chose an ``unsup_source`` for; -1: none.
        seed (int, optional): Seed of the sample's data pipeline; None leaves
            the global generators as they are.
    """
    role: str
    index: int
    acm_class: int = -1
    seed: Optional[int] = None


@DATASETS.register_module()
class SemiSegDataset(Dataset):
    """Wraps an MMSeg labeled dataset and an unlabeled one for AEL.

    Items are addressed by :class:`SampleKey` ``(role, index, acm_class,
    seed)`` from :class:`SemiSegSampler` (one list per step, passed on by
    :class:`SemiSegBatchSampler`; plain tuples of the first two or three
    fields work too):

    * ``('sup', i)``: labeled sample ``i`` through the labeled pipeline;
    * ``('sup_paste', i)``: labeled sample ``i`` through ``paste_pipeline``
      (its own large-scale jitter), the Adaptive Copy-Paste source;
    * ``('unsup', i)`` / ``('unsup_source', i, c)``: unlabeled sample ``i``;
      ``c`` is the class ACM chose the source image for (-1: none).

    A key's ``seed`` seeds numpy's, Python's and torch's CPU global
    generators (which MMCV / MMSeg transforms draw from) before the pipeline
    runs, so a sample's augmentation does not depend on the worker that
    loads it or on what that worker loaded before.

    Every packed sample gets ``ael_role``, ``sample_idx`` (index in its own
    dataset, which the ACM presence table is keyed by) and ``acm_class`` in
    its metainfo, so no pipeline needs extra ``meta_keys``. Labeled samples
    are checked for label values outside ``[0, num_classes)`` that are not
    the ignore index, and load failures name the file.

    Args:
        labeled (dict): Config of a stock MMSeg dataset (e.g.
            ``CityscapesDataset`` with ``ann_file`` a labeled split list).
        unlabeled (dict): Same for unlabeled images; its pipeline must not
            load annotations (none are needed).
        paste_pipeline (list[dict], optional): Pipeline of the copy-paste
            source. The one switch of Adaptive Copy-Paste: with a pipeline
            every step carries a ``sup_paste`` sample per labeled one (and
            the model pastes), with None it carries none (ACP off).
        ignore_index (int): Label value that is not a class.
    """

    def __init__(self,
                 labeled: ConfigType,
                 unlabeled: ConfigType,
                 paste_pipeline: Optional[Sequence[dict]] = None,
                 ignore_index: int = 255) -> None:
        self.labeled = self._build('labeled', labeled)
        self.unlabeled = self._build('unlabeled', unlabeled)
        self.paste = None
        if paste_pipeline is not None:
            # Shares the (serialised) annotation list, only the pipeline differs.
            self.paste = copy.copy(self.labeled)
            self.paste.pipeline = Compose(paste_pipeline)
        self.ignore_index = ignore_index
        self.num_classes = len(self.labeled.metainfo['classes'])
        self._datasets = dict(sup=self.labeled, sup_paste=self.paste,
                              unsup=self.unlabeled, unsup_source=self.unlabeled)

    @staticmethod
    def _build(name: str, cfg: ConfigType):
        """Build one side, naming the folder or split file that is wrong."""
        data_root = cfg.get('data_root') or ''
        if data_root and not osp.isdir(data_root):
            raise FileNotFoundError(f'SemiSegDataset: {name}.data_root {data_root!r} does not '
                                    'exist')
        ann_file = cfg.get('ann_file') or ''
        if ann_file:
            path = ann_file if osp.isabs(ann_file) else osp.join(data_root, ann_file)
            if not osp.isfile(path):
                raise FileNotFoundError(f'SemiSegDataset: {name} split file {path!r} does not '
                                        'exist (tools/dataset_converters/make_semi_splits.py '
                                        'writes them)')
            with open(path) as f:
                if not any(line.strip() for line in f):
                    raise ValueError(f'SemiSegDataset: the {name} split is empty: {path!r}')
        dataset = DATASETS.build(cfg)
        if len(dataset) == 0:
            raise ValueError(f'SemiSegDataset: the {name} split is empty (data_root='
                             f"{data_root!r}, data_prefix={cfg.get('data_prefix')!r})")
        SemiSegDataset._check_files(name, dataset, with_labels=name == 'labeled')
        return dataset

    @staticmethod
    def _check_files(name: str, dataset, with_labels: bool) -> None:
        """Refuse a split that lists files which are not there (a half-copied folder)."""
        keys = ('img_path', 'seg_map_path') if with_labels else ('img_path', )
        # get_data_info: the list itself is serialised away after loading.
        infos = (dataset.get_data_info(i) for i in range(len(dataset)))
        missing = [info[key] for info in infos for key in keys
                   if info.get(key) and '://' not in str(info[key])  # local files only
                   and not osp.isfile(info[key])]
        if missing:
            shown = ', '.join(repr(path) for path in missing[:5])
            more = f' (+{len(missing) - 5} more)' if len(missing) > 5 else ''
            raise FileNotFoundError(
                f'SemiSegDataset: {len(missing)} file(s) listed by the {name} split '
                f'({len(dataset)} samples) do not exist: {shown}{more}')

    @property
    def metainfo(self) -> dict:
        return copy.deepcopy(self.labeled.metainfo)

    def __len__(self) -> int:
        return len(self.labeled) + len(self.unlabeled)

    def __getitem__(self, key: SampleKey) -> dict:
        if not isinstance(key, tuple) or key[0] not in self._datasets:
            raise KeyError(f'SemiSegDataset is indexed by (role, index) keys from '
                           f'SemiSegSampler, got {key!r}; does train_dataloader have '
                           "sampler=dict(type='SemiSegSampler') and "
                           "batch_sampler=dict(type='SemiSegBatchSampler')?")
        role, index = key[0], int(key[1])
        acm_class = int(key[2]) if len(key) > 2 else -1
        dataset = self._datasets[role]
        if dataset is None:
            raise KeyError('SemiSegDataset: a copy-paste source was requested but '
                           'paste_pipeline is None')
        if len(key) > 3 and key[3] is not None:
            seed_host_globals(int(key[3]))
        try:
            results = dataset.prepare_data(index)
        except Exception as error:
            info = dataset.get_data_info(index)
            raise RuntimeError(
                f'SemiSegDataset: failed to load {role} sample {index} (img_path='
                f"{info.get('img_path')!r}, seg_map_path={info.get('seg_map_path')!r}): "
                f'{type(error).__name__}: {error}') from error
        if results is None:
            raise RuntimeError(f'SemiSegDataset: the {role} pipeline returned None for sample '
                               f'{index} ({dataset.get_data_info(index).get("img_path")!r})')
        sample = results['data_samples']
        if role in ('sup', 'sup_paste'):
            self._check_labels(sample, dataset, index)
        sample.set_metainfo(dict(ael_role=role, sample_idx=index, acm_class=acm_class))
        return results

    def _check_labels(self, sample, dataset, index: int) -> None:
        if 'gt_sem_seg' not in sample:
            raise KeyError(f'SemiSegDataset: labeled sample {index} has no gt_sem_seg; '
                           'add LoadAnnotations to the labeled pipeline')
        values = np.unique(sample.gt_sem_seg.data.numpy())
        bad = values[(values != self.ignore_index) & ((values < 0) |
                                                      (values >= self.num_classes))]
        if bad.size:
            path = dataset.get_data_info(index).get('seg_map_path')
            raise ValueError(f'SemiSegDataset: label map {path!r} has values {bad.tolist()} '
                             f'outside [0, {self.num_classes}) that are not ignore_index='
                             f'{self.ignore_index}')
