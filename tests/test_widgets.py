"""dyndl_lite.widgets: the step-size demo draws what the solver computes."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from dyndl_lite.solvers import odeint  # noqa: E402
from dyndl_lite.widgets import draw_solution, step_grid, step_size_demo, step_size_gallery  # noqa: E402

LAM = 10.0
Y0 = torch.ones(1, dtype=torch.float64)
SPAN = (0.0, 2.0)


def decay(t, y):
    return -LAM * y


def decay_exact(t):
    return torch.exp(-LAM * t)[:, None]


def test_step_grid_takes_exact_steps_and_covers_the_span():
    t = step_grid(SPAN, 0.3)
    assert torch.allclose(t[1:] - t[:-1], torch.full((len(t) - 1,), 0.3, dtype=torch.float64))
    assert t[0] == 0 and t[-1] >= 2.0 and t[-2] < 2.0
    with pytest.raises(ValueError, match="positive"):
        step_grid(SPAN, 0.0)


def test_drawn_points_are_the_solver_output_and_euler_blows_up_past_h_lambda_2():
    fig, ax = plt.subplots()
    drawn = draw_solution(ax, decay, Y0, decay_exact, SPAN, 0.25, "euler")  # h*lambda = 2.5
    plt.close(fig)
    expected = (1 - 0.25 * LAM) ** np.arange(len(drawn))
    np.testing.assert_allclose(drawn, expected, rtol=1e-12)
    # |R| = 1.5 over 8 steps: 1.5**8 = 25.6, while the exact solution is 2e-9
    assert abs(drawn[-1]) > 25


def test_overflow_is_shown_not_raised():
    fig, ax = plt.subplots()
    drawn = draw_solution(
        ax, lambda t, y: y**2, Y0, lambda t: 1 / (1 - t)[:, None], (0.0, 10.0), 0.5, "euler"
    )
    plt.close(fig)
    assert np.isnan(drawn).all()


def test_demo_redraws_when_the_slider_or_menu_moves():
    demo = step_size_demo(decay, Y0, decay_exact, SPAN, h_range=(0.01, 0.3), h=0.1)
    # h*lambda = 1
    np.testing.assert_allclose(demo.trajectory, 0.0 ** np.arange(len(demo.trajectory)), atol=1e-12)
    demo.slider.value = 0.05
    assert len(demo.trajectory) == 41
    np.testing.assert_allclose(demo.trajectory, 0.5 ** np.arange(41), rtol=1e-12)
    demo.menu.value = "rk4"
    t = step_grid(SPAN, 0.05)
    np.testing.assert_allclose(
        demo.trajectory, odeint(decay, Y0, t, "rk4")[:, 0].numpy(), rtol=1e-12
    )


def test_gallery_has_one_panel_per_step_size():
    fig = step_size_gallery(decay, Y0, decay_exact, SPAN, [0.05, 0.15, 0.25])
    assert len(fig.axes) == 3
    plt.close(fig)


def test_bad_demo_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="outside h_range"):
        step_size_demo(decay, Y0, decay_exact, SPAN, h_range=(0.01, 0.3), h=0.5)
    with pytest.raises(ValueError, match="non-empty subset"):
        step_size_demo(decay, Y0, decay_exact, SPAN, methods=("euler", "heun"))
    with pytest.raises(ValueError, match="Unknown method"):
        draw_solution(plt.gca(), decay, Y0, decay_exact, SPAN, 0.1, "heun")
    plt.close("all")


def test_gallery_and_demo_figures_pass_the_figure_check():
    from dyndl_lite.plotting import figure_problems

    fig = step_size_gallery(decay, Y0, decay_exact, SPAN, [0.05, 0.3], "euler")
    assert figure_problems(fig) == []
    demo = step_size_demo(decay, Y0, decay_exact, SPAN, h_range=(0.01, 0.3), h=0.15)
    assert figure_problems(demo.figure) == []
    plt.close("all")
