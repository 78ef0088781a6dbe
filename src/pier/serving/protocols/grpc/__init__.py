"""gRPC transport: Open Inference Protocol (``inference.GRPCInferenceService``) and TF Serving.

Nothing is imported here, so that importing this package does not pull in grpc or the
generated protocol modules; import the submodules that you need.
"""
