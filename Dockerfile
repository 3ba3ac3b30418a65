# syntax=docker/dockerfile:1
# The imagegen client: sends a prompt to the SQS queue, as the original system's client did.
#   docker run -e AWS_ACCESS_KEY_ID=… -e AWS_SECRET_ACCESS_KEY=… -e AWS_REGION=eu-west-1 \
#              -e SQS_QUEUE_URL=https://sqs.eu-west-1.amazonaws.com/123456789012/imagegen-prompts IMAGE "a cat in space"
ARG PYTHON_VERSION=3.13

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM python:${PYTHON_VERSION}-slim AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
# Dependencies first (cached while only the code changes), then the project itself, without dev tools.
RUN uv sync --frozen --no-dev --no-install-project
# Every package of the project's wheel; only boto3 is installed with them (no extras: no Powertools, no moto).
COPY imagegen ./imagegen
COPY imagegen_cli ./imagegen_cli
COPY generate_image ./generate_image
COPY sqs_worker ./sqs_worker
COPY model_watch ./model_watch
COPY bedrock_emulator ./bedrock_emulator
COPY local_stack ./local_stack
RUN uv sync --frozen --no-dev --no-editable

FROM python:${PYTHON_VERSION}-slim
LABEL org.opencontainers.image.title="imagegen" \
      org.opencontainers.image.description="Send text-to-image prompts to the imagegen SQS queue"
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin imagegen
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001
WORKDIR /home/imagegen
ENTRYPOINT ["imagegen", "enqueue"]
CMD ["--help"]
