"""Protocol definitions (.proto) for Pier's gRPC services, and the modules generated from them.

The ``*_pb2.py``, ``*_pb2.pyi`` and ``*_pb2_grpc.py`` files are written at build or install
time by ``python -m pier.serving.protocols.grpc.generate``; they are not kept in git.
"""
