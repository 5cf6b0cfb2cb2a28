"""docs/api.md is what cli.protodoc makes of the protos, and it renders every kind of declaration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cli import protodoc
from libs.common.settings import DEFAULT_DESCRIPTOR_SET

ROOT = Path(__file__).resolve().parents[1]
PROTODEPS = ROOT / ".build" / "protodeps"

SAMPLE = """syntax = "proto3";

// The sample package.
package jiazheng.sample.events.v1;

import "buf/validate/validate.proto";

// Something happened.
message Happened {
  option (buf.validate.message).cel = {
    id: "happened.consistent"
    message: "tags and labels agree"
    expression: "true"
  };
  // Kinds of happening.
  enum Kind {
    KIND_UNSPECIFIED = 0;
    // A big one.
    KIND_BIG = 1;
  }
  // Nested detail.
  message Detail {
    // Free text.
    string note = 1;
  }
  // The tags; at most 3.
  repeated string tags = 1 [(buf.validate.field).repeated = {
    max_items: 3
    items: {
      string: {min_len: 2}
    }
  }];
  map<string, Detail> labels = 2;
  oneof subject {
    // By worker.
    string worker_id = 3;
    Kind kind = 4 [(buf.validate.field).enum = {
      in: [1]
    }];
  }
  optional int64 count = 5 [(buf.validate.field).int64.gt = 0];
}

// Streams things.
service StreamService {
  // Watches happenings.
  rpc Watch(stream Happened) returns (stream Happened.Detail);
}
"""


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> str:
    if not (PROTODEPS / "buf" / "validate" / "validate.proto").exists():
        pytest.fail("validate.proto is missing: run `make deps`")
    work = tmp_path_factory.mktemp("protodoc")
    (work / "jiazheng" / "sample" / "events" / "v1").mkdir(parents=True)
    (work / "jiazheng" / "sample" / "events" / "v1" / "sample.proto").write_text(SAMPLE)
    protoset = work / "sample.binpb"
    subprocess.run(
        [
            *(sys.executable, "-m", "grpc_tools.protoc", f"-I{work}", f"-I{PROTODEPS}"),
            *("--include_source_info", "--include_imports", f"--descriptor_set_out={protoset}"),
            "jiazheng/sample/events/v1/sample.proto",
        ],
        check=True,
    )
    return protodoc.render(protodoc.load(protoset))


def test_committed_api_reference_is_current() -> None:
    protoset = DEFAULT_DESCRIPTOR_SET
    assert protoset.exists(), f"no descriptor set at {protoset}: run `make proto`"
    expected = protodoc.render(protodoc.load(protoset))

    committed = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")

    assert committed == expected, (
        "docs/api.md is stale: the protos changed since it was generated. "
        "Run `make api-docs` and commit docs/api.md with the proto change."
    )


def test_events_package_is_marked_with_its_topic(sample: str) -> None:
    assert "## jiazheng.sample.events.v1 (events of sample)" in sample
    assert "### Event `Happened`" in sample
    assert "Topic `jiazheng.sample.events.v1`, `ce_type` `jiazheng.sample.events.v1.Happened`" in sample
    assert "### Message `Happened.Detail`" in sample  # nested: not an event of its own


def test_services_show_streaming_methods_with_linked_types_and_comments(sample: str) -> None:
    assert "### Service `StreamService`" in sample
    assert (
        "| `Watch` | stream [`Happened`](#jiazheng.sample.events.v1.Happened) | "
        "stream [`Happened.Detail`](#jiazheng.sample.events.v1.Happened.Detail) | Watches happenings. |"
    ) in sample


def test_fields_show_type_comment_and_readable_rules(sample: str) -> None:
    assert (
        "| 1 | `tags` | repeated `string` | The tags; at most 3. | at most 3 items; each item: length ≥ 2 |"
        in sample
    )
    assert (
        "| 2 | `labels` | map<`string`, [`Happened.Detail`](#jiazheng.sample.events.v1.Happened.Detail)> |"
        in sample
    )
    assert "| 3 | `worker_id` | `string` | One of `subject`. By worker. |  |" in sample
    assert "| One of `subject`. | one of `KIND_BIG` |" in sample
    assert "| 5 | `count` | optional `int64` |  | > 0 |" in sample
    assert "Rules: tags and labels agree (CEL `happened.consistent`)" in sample


def test_enums_list_values_with_comments(sample: str) -> None:
    assert "### Enum `Happened.Kind`" in sample
    assert "| `KIND_BIG` | 1 | A big one. |" in sample
    assert "The sample package." in sample
