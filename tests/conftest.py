"Fixtures that several test files share."
import pytest


@pytest.fixture(scope="module")
def one_thread():
    "One thread for a file's tiny models (they run fastest so, and stay fast on a busy machine); the setting is put back."
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
