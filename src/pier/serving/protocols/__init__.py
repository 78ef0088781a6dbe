"""The inference protocols, one module per protocol and layer: ``<protocol>_<layer>.py``.

``v2_*`` is the Open Inference Protocol (KServe V2 / Triton), ``tfs_*`` TF Serving's API.
Layers: ``*_codec`` (pure functions between request bytes and numpy), ``*_rest`` (REST
handlers over the data plane), documents (``v2_metadata``, ``v2_config``, ``v2_statistics``,
``v2_repository``, ``tfs_metadata``); ``grpc/`` holds each protocol's ``*_codec`` (protobuf
messages) and ``*_servicer``. ``rest`` is the one ASGI app for both, ``http`` its plumbing.
"""
