"""Thin launcher: runs the stock MMSeg ``tools/test.py`` shipped in the installed package.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options ...]
"""
import os.path as osp
import runpy
import sys

import mmseg


def main() -> None:
    script = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools', 'test.py')
    sys.argv[0] = script
    runpy.run_path(script, run_name='__main__')


if __name__ == '__main__':
    main()
