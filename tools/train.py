"""Thin launcher: runs the stock MMSeg ``tools/train.py`` shipped in the installed package.

    python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp] [--cfg-options ...]
"""
import os.path as osp
import runpy
import sys

import mmseg


def main() -> None:
    script = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools', 'train.py')
    sys.argv[0] = script
    runpy.run_path(script, run_name='__main__')


if __name__ == '__main__':
    main()
