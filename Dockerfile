# timserver in a container: docs/container.md. Build: docker build -t timserver .
# Run:   docker run -p 8080:8080 -v timserver-data:/data timserver
ARG BASE=debian:bookworm-slim
FROM ${BASE}

# Python from the base's own packages (bookworm: 3.11); nothing else.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*

# The dependencies first, in a layer of their own: a change to the code does not reinstall them.
RUN python3 -m venv /opt/timserver
COPY pyproject.toml /src/pyproject.toml
RUN /opt/timserver/bin/python -c "import tomllib; print('\n'.join(tomllib.load(open('/src/pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && /opt/timserver/bin/pip install --no-cache-dir --disable-pip-version-check -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt
COPY README.md /src/README.md
COPY src /src/src
RUN /opt/timserver/bin/pip install --no-cache-dir --disable-pip-version-check --no-deps /src \
 && rm -rf /src

# A user of its own; its data (the SQLite database with the apps' keys, the TLS files of
# --tls self-signed) in /data, readable by that user only.
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin timserver \
 && install -d -o timserver -g timserver -m 0700 /data
USER timserver
VOLUME /data
ENV PATH=/opt/timserver/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TIMSERVER_HOME=/data \
    TIMSERVER_DB=sqlite:////data/timserver.db \
    TIMSERVER_DEV_APP=1
EXPOSE 8080

HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]

# Any address inside the container: the port is reached through `docker run -p`. The web console
# still answers on the container's loopback only (see docs/container.md to reach it).
ENTRYPOINT ["timserver"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
