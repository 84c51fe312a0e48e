import torch

from tests.training.factories import job_spec
from workers.training.regularizers.input_noise import InputNoise


def test_noise_of_the_given_std_is_added_to_inputs_and_targets_are_untouched():
    torch.manual_seed(0)
    inputs, targets = torch.full((200, 50), 2.0), torch.arange(200)
    noisy, same_targets = InputNoise(0.5).transform_batch(inputs, targets)
    noise = noisy - inputs
    assert abs(noise.mean().item()) < 0.01 and abs(noise.std().item() - 0.5) < 0.01
    assert same_targets is targets


def test_the_spec_field_switches_it_on():
    assert InputNoise.for_spec(job_spec()) is None
    assert InputNoise.for_spec(job_spec(regularization={"input_noise": 0.1})) is not None
