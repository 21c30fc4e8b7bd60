from .ceil_pool_resnet import CeilPoolResNetV1c

__all__ = ['CeilPoolResNetV1c']
