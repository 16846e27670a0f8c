"""The local server stack: SeaweedFS S3 plus a Milvus standalone server persisting to it, on loopback."""

from cairn.stack.local import LocalStack, StackError, StackStatus

__all__ = ["LocalStack", "StackError", "StackStatus"]
