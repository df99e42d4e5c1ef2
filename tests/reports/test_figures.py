"""The examples figure (issue 27, items 10 and 14): it names the run's model, pixels (with
their share of the image), mode and image indices, says how many successes it shows, is
not blank when nothing succeeded, and keeps circles at the image's border visible."""

from __future__ import annotations

import numpy as np
from matplotlib.patches import Circle
from matplotlib.text import Text

from deattack.reports.figures import adversarial_figure, adversarial_grid

NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _record(index: int, success: bool, pixels=((5, 6, 255, 0, 0),), target: int = -1) -> dict:
    return {"image_index": index, "true_label": 3, "target": target, "success": success,
            "status": "success" if success else "failed", "pixels": [list(p) for p in pixels],
            "adversarial_prediction": 5 if success else 3, "adversarial_confidence": 0.61,
            "original_prediction": 3, "original_confidence": 0.9}


def _images(indices, height: int = 32, width: int = 32) -> dict[int, np.ndarray]:
    return {i: np.full((height, width, 3), 90 + i, np.uint8) for i in indices}


def _texts(figure) -> str:
    return "\n".join(t.get_text() for t in figure.findobj(Text) if t.get_text())


def test_title_names_the_setting_the_counts_and_each_image():
    records = [_record(7, True), _record(2, False), _record(9, True), _record(4, True), _record(5, False)]
    figure = adversarial_figure(records, _images([7, 2, 9, 4, 5]), NAMES, model="resnet20", pixels=1,
                                mode="untargeted", max_examples=2)
    texts = _texts(figure)
    assert "resnet20, 1 of 1,024 pixels (0.1 %), untargeted: 2 of 3 successes shown (5 problems)" in texts
    assert "image 7" in texts and "image 9" in texts and "image 4" not in texts
    assert "cat" in texts and "dog" in texts


def test_many_pixels_show_their_share_of_an_image_of_any_size():
    pixels = [(x, y, 255, 255, 255) for x in range(20) for y in range(2)]
    figure = adversarial_figure([_record(0, True, pixels)], _images([0], 16, 20), NAMES, model="lenet",
                                pixels=40, mode="targeted")
    assert "lenet, 40 of 320 pixels (12.5 %), targeted: 1 of 1 success shown (1 problem)" in _texts(figure)


def test_zero_successes_say_so_and_are_not_blank(tmp_path):
    records = [_record(0, False), _record(3, False), _record(8, False)]
    figure = adversarial_figure(records, _images([0, 3, 8]), NAMES, model="lenet", pixels=3, mode="untargeted")
    texts = _texts(figure)
    assert "no adversarial example found" in texts
    assert "lenet, 3 of 1,024 pixels (0.3 %), untargeted: 0 of 0 successes shown (3 problems)" in texts
    assert "images 0, 3, 8" in texts
    path = adversarial_grid(records, _images([0, 3, 8]), NAMES, tmp_path / "none.png", model="lenet", pixels=3,
                            mode="untargeted")
    import matplotlib.image

    drawn = matplotlib.image.imread(path)[..., :3]
    assert (drawn < 0.5).mean() > 0.001  # dark text on the white page, not a blank page


def test_circles_at_the_border_are_not_clipped():
    pixels = [(0, 0, 255, 0, 0), (31, 31, 0, 0, 255), (31, 0, 0, 255, 0)]
    figure = adversarial_figure([_record(1, True, pixels)], _images([1]), NAMES, model="lenet", pixels=3,
                                mode="untargeted")
    circles = figure.findobj(Circle)
    assert sorted(c.center for c in circles) == [(0, 0), (31, 0), (31, 31)]
    assert not any(c.get_clip_on() for c in circles)
