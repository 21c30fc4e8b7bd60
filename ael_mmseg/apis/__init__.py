"""What a user calls after training: export a segmentor of an AEL checkpoint."""
from .export import export_plain_config, export_segmentor, plain_config

__all__ = ['export_plain_config', 'export_segmentor', 'plain_config']
