"""TF Serving REST against a real server: predict, status, metadata, labels, classify, errors."""

from __future__ import annotations

import base64
import shutil
import subprocess

import httpx
import pytest


def post(url: str, path: str, body: object) -> httpx.Response:
    return httpx.post(url + path, json=body, timeout=10)


def test_readme_curl_gives_half_plus_two(url: str) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.fail("curl is needed for this test (apt-get install curl)")
    out = subprocess.run(
        [
            curl,
            "-sS",
            "-d",
            '{"instances": [1.0, 2.0, 5.0]}',
            url + "/v1/models/half_plus_two:predict",
        ],
        capture_output=True,
        check=True,
        text=True,
        timeout=10,
    )
    assert httpx.Response(200, content=out.stdout).json() == {"predictions": [2.5, 3.0, 4.5]}


def test_columnar_inputs(url: str) -> None:
    r = post(url, "/v1/models/half_plus_two:predict", {"inputs": [1.0, 3.0]})
    assert r.status_code == 200
    assert r.json() == {"outputs": [2.5, 3.5]}
    r = post(url, "/v1/models/half_plus_two:predict", {"inputs": {"x": [4.0]}})
    assert r.json() == {"outputs": [4.0]}


def test_row_objects_and_several_outputs(url: str) -> None:
    rows = [{"input": [5.1, 3.5, 1.4, 0.2]}, {"input": [6.7, 3.0, 5.2, 2.3]}]
    r = post(url, "/v1/models/iris:predict", {"instances": rows})
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert len(preds) == 2
    assert set(preds[0]) == {"predict", "predict_proba"}
    assert preds[0]["predict"] == 0 and preds[1]["predict"] == 2
    assert abs(sum(preds[0]["predict_proba"]) - 1.0) < 1e-6


def test_status_and_metadata(url: str) -> None:
    r = httpx.get(url + "/v1/models/half_plus_two")
    assert r.status_code == 200
    body = r.json()
    assert body["model_version_status"] == [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    ]
    assert body["ready"] is True and body["name"] == "half_plus_two"
    meta = httpx.get(url + "/v1/models/half_plus_two/metadata").json()
    sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["inputs"]["x"]["dtype"] == "DT_FLOAT"
    assert sig["outputs"]["y"]["tensor_shape"]["dim"][0]["size"] == "-1"
    assert meta["model_spec"]["version"] == "1"


def test_versions_and_labels(url: str) -> None:
    row = {"instances": [[1.0, 1.0, 1.0, 1.0]]}
    assert post(url, "/v1/models/scaler/versions/1:predict", row).json() == {
        "predictions": [[3.0] * 4]
    }
    assert post(url, "/v1/models/scaler/versions/2:predict", row).json() == {
        "predictions": [[4.0] * 4]
    }
    assert post(url, "/v1/models/scaler/labels/stable:predict", row).json() == {
        "predictions": [[3.0] * 4]
    }
    assert post(url, "/v1/models/scaler/labels/canary:predict", row).json() == {
        "predictions": [[4.0] * 4]
    }
    # no version given: the latest served version (2; version 3 is excluded by the policy)
    assert post(url, "/v1/models/scaler:predict", row).json() == {"predictions": [[4.0] * 4]}
    r = post(url, "/v1/models/scaler/versions/3:predict", row)
    assert r.status_code == 404 and "version 3" in r.json()["error"]
    r = post(url, "/v1/models/scaler/labels/nightly:predict", row)
    assert r.status_code == 404 and "nightly" in r.json()["error"]
    status = httpx.get(url + "/v1/models/scaler/labels/canary").json()
    assert [s["version"] for s in status["model_version_status"]] == ["2"]


def test_classify_and_regress(url: str) -> None:
    r = post(
        url,
        "/v1/models/iris:classify",
        {
            "examples": [
                {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
            ]
        },
    )
    assert r.status_code == 200, r.text
    result = r.json()["results"][0]
    assert [label for label, _ in result] == ["setosa", "versicolor", "virginica"]
    assert max(result, key=lambda p: p[1])[0] == "setosa"
    r = post(
        url,
        "/v1/models/linear:regress",
        {"context": {"x0": 1.0}, "examples": [{"x1": 0.0, "x2": 0.0}]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["results"] == [pytest.approx(4.0)]


def test_b64_strings(url: str) -> None:
    r = post(
        url,
        "/v1/models/pyfunc:predict",
        {"instances": [{"b64": base64.b64encode(b"ab").decode()}, "xyz"]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == [
        {"length": 2, "upper": "AB!"},
        {"length": 3, "upper": "XYZ!"},
    ]


@pytest.mark.parametrize(
    ("path", "body", "status", "fragment"),
    [
        ("/v1/models/half_plus_two:predict", b"{not json", 400, "JSON"),
        (
            "/v1/models/half_plus_two:predict",
            b'{"instances": [1.0], "inputs": [1.0]}',
            400,
            "instances",
        ),
        ("/v1/models/half_plus_two:predict", b'{"instances": [[1.0, 2.0]]}', 400, "shape"),
        ("/v1/models/half_plus_two:predict", b'{"instances": ["a"]}', 400, "x"),
        (
            "/v1/models/half_plus_two:predict",
            b'{"signature_name": "other", "instances": [1.0]}',
            404,
            "other",
        ),
        ("/v1/models/nope:predict", b'{"instances": [1.0]}', 404, "nope"),
        ("/v1/models/half_plus_two:explode", b'{"instances": [1.0]}', 400, "explode"),
        ("/v1/models/half_plus_two/versions/x:predict", b'{"instances": [1.0]}', 400, "version"),
        ("/v1/models/half_plus_two/versions/9:predict", b'{"instances": [1.0]}', 404, "version 9"),
        ("/v1/models/half_plus_two:classify", b'{"examples": [{"x": 1.0}]}', 501, "classify"),
    ],
)
def test_bad_requests(url: str, path: str, body: bytes, status: int, fragment: str) -> None:
    r = httpx.post(url + path, content=body, timeout=10)
    assert r.status_code == status, r.text
    assert fragment in r.json()["error"]
    # and the server keeps serving
    assert post(url, "/v1/models/half_plus_two:predict", {"instances": [1.0]}).json() == {
        "predictions": [2.5]
    }


def test_failed_model_reports_reason(url: str) -> None:
    r = httpx.get(url + "/v1/models/broken")
    assert r.status_code == 200
    (status,) = r.json()["model_version_status"]
    assert status["state"] == "END"
    assert status["status"]["error_code"] != "OK"
    assert "model.onnx" in status["status"]["error_message"]
    r = post(url, "/v1/models/broken:predict", {"instances": [1.0]})
    assert r.status_code == 503 and "broken" in r.json()["error"]


def test_wrong_method(url: str) -> None:
    r = httpx.get(url + "/v1/models/half_plus_two:predict")
    assert r.status_code == 405
    assert "POST" in r.json()["error"]
