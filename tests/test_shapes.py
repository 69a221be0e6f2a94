import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyconv import (InvalidConfigError, conv_output_size, conv_param_count, pool_output_size,
                    summary)
from pyconv.shapes import parse_layer, parse_shape


# Handout 1(b): 32x32x3 input, 5x5 filter.
@pytest.mark.parametrize("stride, padding, expected", [(1, 0, 28), (3, 0, 10), (3, 3, 12)])
def test_handout_valid_configurations(stride, padding, expected):
    assert conv_output_size(32, 5, stride=stride, padding=padding) == expected


@pytest.mark.parametrize("padding, shown", [(0, "(32 - 5 + 2*0)/2 + 1 = 14.5"),
                                            (3, "(32 - 5 + 2*3)/2 + 1 = 17.5")])
def test_handout_invalid_configurations(padding, shown):
    with pytest.raises(InvalidConfigError) as info:
        conv_output_size(32, 5, stride=2, padding=padding)
    assert shown in str(info.value)
    # no padding fixes stride 2 here (the handout's note); the message says so
    assert "no padding makes stride 2 fit" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_invalid_configuration_names_nearest_paddings():
    with pytest.raises(InvalidConfigError, match=r"paddings that fit: 0 \(gives 10\), 3 \(gives 12\)"):
        conv_output_size(32, 5, stride=3, padding=1)


def test_not_strict_floors_like_pytorch():
    assert conv_output_size(32, 5, stride=2, strict=False) == 14


@pytest.mark.parametrize("strict", [True, False])
def test_kernel_larger_than_padded_input_is_always_an_error(strict):
    with pytest.raises(InvalidConfigError, match="kernel larger than the padded input"):
        conv_output_size(4, 7, padding=1, strict=strict)


def test_dilation_formula():
    assert conv_output_size(10, 3, dilation=2) == 6
    with pytest.raises(InvalidConfigError, match=r"\(10 - 2\*\(3 - 1\) - 1 \+ 2\*0\)/4 \+ 1"):
        conv_output_size(10, 3, dilation=2, stride=4)


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(n=0, f=1), ValueError, "n"), (dict(n=5, f=0), ValueError, "f"),
    (dict(n=5, f=3, stride=0), ValueError, "stride"),
    (dict(n=5, f=3, padding=-1), ValueError, "padding"),
    (dict(n=5, f=3, dilation=0), ValueError, "dilation"),
    (dict(n=5.0, f=3), TypeError, "n"), (dict(n=5, f=True), TypeError, "f"),
])
def test_bad_arguments_name_the_argument(kwargs, error, name):
    with pytest.raises(error, match=f"^{name} must be"):
        conv_output_size(**kwargs)


@given(n=st.integers(1, 60), f=st.integers(1, 9), s=st.integers(1, 6), p=st.integers(0, 4),
       d=st.integers(1, 3))
def test_size_counts_the_windows(n, f, s, p, d):
    extent = d * (f - 1) + 1
    windows = len(range(0, n + 2 * p - extent + 1, s))
    if windows == 0:
        with pytest.raises(InvalidConfigError):
            conv_output_size(n, f, stride=s, padding=p, dilation=d, strict=False)
        return
    assert conv_output_size(n, f, stride=s, padding=p, dilation=d, strict=False) == windows
    whole = (n + 2 * p - extent) % s == 0
    if whole:
        assert conv_output_size(n, f, stride=s, padding=p, dilation=d) == windows
    else:
        with pytest.raises(InvalidConfigError):
            conv_output_size(n, f, stride=s, padding=p, dilation=d)


def test_alexnet_conv1_and_pool():  # handout 1(c), 1(e), 1(g)
    assert conv_output_size(227, 11, stride=4) == 55
    assert conv_param_count(96, 11, 3) == 34944
    assert pool_output_size(55, 3, stride=2) == 27


def test_handout_1f_parameters():
    assert conv_param_count(25, 3, 5) == 1150
    assert conv_output_size(31, 3, stride=2, padding=1) == 16


def test_param_count_options():
    assert conv_param_count(8, (3, 5), 4) == 8 * (3 * 5 * 4 + 1)
    assert conv_param_count(8, 3, 4, bias=False) == 8 * 36
    assert conv_param_count(8, 3, 4, groups=4) == 8 * (9 + 1)
    with pytest.raises(ValueError, match="groups=3 must divide"):
        conv_param_count(8, 3, 4, groups=3)


def test_pool_stride_defaults_to_size_and_padding_is_bounded():
    assert pool_output_size(8, 2) == 4
    assert pool_output_size(4, 3, stride=3, padding=1) == 2  # handout 2(c)
    with pytest.raises(ValueError, match="padding must be at most half the pool window"):
        pool_output_size(8, 3, padding=2)


def test_summary_alexnet():  # pooling keeps the channels and adds no parameters (1(h))
    s = summary((227, 227, 3), ["conv:k=96,f=11,s=4", "maxpool:f=3,s=2"])
    assert [(r.output_shape, r.params) for r in s.rows] == [((55, 55, 96), 34944),
                                                           ((27, 27, 96), 0)]
    assert s.total_params == 34944
    text = str(s)
    assert "(55, 55, 96)" in text and "34,944" in text and "(27, 27, 96)" in text


def test_summary_all_layer_kinds():
    s = summary("32x32x3", ["conv:k=8,f=3,p=1", "avgpool:f=2", "conv:k=16,f=3x1,g=8,bias=0",
                            "fc:n=10"])
    assert [r.output_shape for r in s.rows] == [(32, 32, 8), (16, 16, 8), (14, 16, 16), (10,)]
    assert [r.params for r in s.rows] == [8 * 28, 0, 16 * 3, 10 * (14 * 16 * 16 + 1)]


def test_summary_reports_the_invalid_layer_with_its_formula():
    with pytest.raises(InvalidConfigError, match=r"layer 2 .*\(28 - 5 \+ 2\*0\)/2 \+ 1 = 12.5"):
        summary((32, 32, 3), ["conv:k=4,f=5", "conv:k=4,f=5,s=2"])


@pytest.mark.parametrize("spec, message", [("pool:f=2", "unknown type"),
                                           ("conv:k=4", "missing f"),
                                           ("conv:k=4,f=3,q=1", "unknown option"),
                                           ("conv:k=x,f=3", "whole number")])
def test_parse_layer_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_layer(spec)


def test_parse_shape():
    assert parse_shape("227x227x3") == (227, 227, 3)
    with pytest.raises(ValueError, match="HxWxC"):
        parse_shape("227x227")


def test_fc_params_match_flattened_input():
    s = summary((2, 3, 4), ["fc:n=5"])
    assert s.rows[0].params == 5 * (math.prod((2, 3, 4)) + 1)


@pytest.mark.parametrize("n, f, s, before, after, d", [
    (7, 3, 2, 0, 1, 1), (8, 2, 2, 1, 0, 1), (9, 3, 3, 2, 1, 2), (6, 1, 4, 0, 3, 1),
])
def test_unequal_paddings_count_the_windows(n, f, s, before, after, d):
    extent = d * (f - 1) + 1
    starts = [i for i in range(-before, n + after - extent + 1) if (i + before) % s == 0]
    assert conv_output_size(n, f, stride=s, padding=(before, after), dilation=d,
                            strict=False) == len(starts)


@pytest.mark.parametrize("n, f, s, d", [(7, 3, 2, 1), (8, 2, 2, 1), (5, 3, 3, 2), (1, 4, 1, 1),
                                        (10, 1, 4, 1)])
def test_same_is_ceil_of_input_over_stride(n, f, s, d):
    assert conv_output_size(n, f, stride=s, padding="same", dilation=d) == -(-n // s)
    assert pool_output_size(n, f, stride=s, padding="same", dilation=d) == -(-n // s)


@pytest.mark.parametrize("n, f, s, p, d", [(7, 2, 2, 0, 1), (6, 3, 2, 1, 1), (5, 2, 2, 1, 1),
                                           (10, 3, 4, 1, 1), (11, 3, 2, 1, 2), (4, 2, 3, 1, 1)])
def test_ceil_mode_is_pytorchs(n, f, s, p, d):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    got = pool_output_size(n, f, stride=s, padding=p, dilation=d, ceil_mode=True)
    x = torch.zeros(1, 1, n, 1)
    want = torch.nn.functional.max_pool2d(x, (f, 1), stride=(s, 1), padding=(p, 0),
                                          dilation=(d, 1), ceil_mode=True).shape[2]
    assert got == want
    # the last window starts inside the input or its top padding, never in the bottom one
    assert (got - 1) * s - p < n


def test_ceil_mode_ignores_strict_and_same_refuses_it():
    assert pool_output_size(5, 2, ceil_mode=True) == 3
    with pytest.raises(InvalidConfigError):
        pool_output_size(5, 2)
    with pytest.raises(ValueError, match="^ceil_mode=True cannot be combined with padding='same'"):
        pool_output_size(5, 2, padding="same", ceil_mode=True)
    with pytest.raises(TypeError, match="^ceil_mode must be True or False, got 'yes'"):
        pool_output_size(5, 2, ceil_mode="yes")


def test_summary_padding_forms_ceil_and_dilation():
    s = summary((224, 224, 3), ["conv:k=8,f=3,s=2,p=same", "maxpool:f=3,s=2,ceil=1",
                                "conv:k=4,f=3,s=2,p=0/1x0/1", "avgpool:f=2,s=1,p=1x0,d=2",
                                "conv:k=4,f=1,p=valid"])
    assert [r.output_shape for r in s.rows] == [
        (112, 112, 8), (56, 56, 8), (28, 28, 4), (28, 26, 4), (28, 26, 4)]
    with pytest.raises(ValueError, match=r"p must be P, PHxPW, T/BxL/R, same or valid, got 'x'"):
        summary((8, 8, 1), ["conv:k=1,f=1,p=x"])
