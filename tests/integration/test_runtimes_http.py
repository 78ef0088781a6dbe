"""Every runtime behind both REST protocols, on the shared server."""

from __future__ import annotations

import httpx
import pytest


def test_every_runtime_over_both_protocols(url: str) -> None:
    cases = {
        "linear": ({"instances": [[1.0, 0.0, 0.0]]}, "input", "FP64", [[1.0, 0.0, 0.0]]),
        "xgb": ({"instances": [[1.0, 1.0, 0.0, 0.0]]}, "input", "FP32", [[1.0, 1.0, 0.0, 0.0]]),
        "lgbm": ({"instances": [[1.0, 0.0, 0.0, 0.0]]}, "input", "FP64", [[1.0, 0.0, 0.0, 0.0]]),
        "torch": ({"instances": [[1.0, 2.0, 3.0]]}, "x", "FP32", [[1.0, 2.0, 3.0]]),
    }
    for model, (tf_body, name, dt, data) in cases.items():
        tf = httpx.post(f"{url}/v1/models/{model}:predict", json=tf_body)
        assert tf.status_code == 200, (model, tf.text)
        v2 = httpx.post(
            f"{url}/v2/models/{model}/infer",
            json={
                "inputs": [{"name": name, "shape": [1, len(data[0])], "datatype": dt, "data": data}]
            },
        )
        assert v2.status_code == 200, (model, v2.text)
        tf_pred = tf.json()["predictions"]
        v2_out = v2.json()["outputs"][0]["data"]
        flat = tf_pred if not isinstance(tf_pred[0], list) else [v for row in tf_pred for v in row]
        assert flat == pytest.approx(v2_out), model
    # torch: y = 2x - 1
    r = httpx.post(f"{url}/v1/models/torch:predict", json={"instances": [[1.0, 2.0, 3.0]]})
    assert r.json() == {"predictions": [[1.0, 3.0, 5.0]]}
    # sklearn linear: y = x0 - 2 x1 + 0.5 x2 + 3
    r = httpx.post(f"{url}/v1/models/linear:predict", json={"instances": [[1.0, 0.0, 0.0]]})
    assert r.json()["predictions"] == [pytest.approx(4.0)]
