"""How the hooks reach the model they serve."""
from mmengine.model import is_model_wrapper


def unwrapped_model(runner, needs: str, hook: str):
    """The runner's model without its DDP wrapper, if it has attribute ``needs``.

    Raises:
        TypeError: Naming the hook and the model when the attribute is missing.
    """
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    if not hasattr(model, needs):
        raise TypeError(f'{hook} needs a model with `{needs}` ('
                        f"{'AELSegmentor' if needs != 'update_teacher' else 'a mean teacher'}"
                        f'), got {type(model).__name__}')
    return model
