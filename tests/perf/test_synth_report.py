"""`spatten synth-report`: real and hand-written csynth.xml reports, malformed ones as one
error line, and a generated project's report beside the model's estimate."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from spatten_hls.compiler.cli.main import main
from spatten_hls.compiler.errors import InputError
from spatten_hls.compiler.perf.synth_report import load_synth_report, parse_csynth

DATA = Path(__file__).resolve().parents[1] / "data" / "csynth"
HLS4ML = DATA / "hls4ml-vivado-hls-2020.1-myproject.xml"

# The Vitis 2021+ layout: a top whose latency is data-dependent, a module with a pipelined
# loop nested in another and a trip-count range.
VITIS_2022 = """<?xml version="1.0" encoding="UTF-8"?>
<profile>
  <ReportVersion><Version>2022.2</Version></ReportVersion>
  <UserAssignments>
    <unit>ns</unit><Part>{part}</Part><TopModelName>{top}</TopModelName>
    <TargetClockPeriod>3.33</TargetClockPeriod><ClockUncertainty>0.90</ClockUncertainty>
    <FlowTarget>vitis</FlowTarget>
  </UserAssignments>
  <PerformanceEstimates>
    <PipelineType>no</PipelineType>
    <SummaryOfTimingAnalysis><unit>ns</unit><EstimatedClockPeriod>2.952</EstimatedClockPeriod></SummaryOfTimingAnalysis>
    <SummaryOfOverallLatency>
      <unit>clock cycles</unit>
      <Best-caseLatency>{best}</Best-caseLatency><Average-caseLatency>undef</Average-caseLatency>
      <Worst-caseLatency>{worst}</Worst-caseLatency>
      <Interval-min>{best_ii}</Interval-min><Interval-max>undef</Interval-max>
    </SummaryOfOverallLatency>
  </PerformanceEstimates>
  <AreaEstimates>
    <Resources><BRAM_18K>120</BRAM_18K><DSP>{dsp}</DSP><FF>90210</FF><LUT>80112</LUT><URAM>4</URAM></Resources>
    <AvailableResources><BRAM_18K>4032</BRAM_18K><DSP>9024</DSP><FF>2607360</FF><LUT>1303680</LUT><URAM>960</URAM></AvailableResources>
  </AreaEstimates>
  <ModuleInformation>
    <Module>
      <Name>qk_stream</Name>
      <PerformanceEstimates>
        <SummaryOfLoopLatency>
          <rows>
            <Name>rows</Name><TripCount>1 ~ 16</TripCount><Latency>18 ~ 640</Latency>
            <PipelineType>no</PipelineType>
            <steps>
              <Name>steps</Name><TripCount>undef</TripCount><Latency>undef</Latency>
              <PipelineII>{steps_ii}</PipelineII><PipelineDepth>9</PipelineDepth>
              <PipelineType>yes</PipelineType>
            </steps>
          </rows>
        </SummaryOfLoopLatency>
      </PerformanceEstimates>
    </Module>
  </ModuleInformation>
</profile>
"""


def vitis_2022(**values) -> str:
    fields = {
        "part": "xcu280-fsvh2892-2L-e",
        "top": "spatten_top",
        "best": 1000,
        "worst": "undef",
        "best_ii": 1001,
        "dsp": 1100,
        "steps_ii": 1,
    } | values
    return VITIS_2022.format(**fields)


def test_a_real_vivado_hls_2020_1_report():
    r = load_synth_report(HLS4ML)
    assert (r.version, r.part, r.top, r.pipeline_type) == (
        "2020.1",
        "xc7z020-clg400-1",
        "myproject",
        "dataflow",
    )
    assert (r.target_clock_ns, r.estimated_clock_ns) == (5.0, 4.049)
    assert (r.latency_best, r.latency_average, r.latency_worst) == (10, 10, 10)
    assert (r.interval_min, r.interval_max) == (8, 8)
    assert r.used == {"BRAM_18K": 0, "DSP": 73, "FF": 7969, "LUT": 2532, "URAM": 0}
    assert r.available == {"BRAM_18K": 280, "DSP": 220, "FF": 106400, "LUT": 53200, "URAM": 0}
    assert r.loops == ()


# Real reports of six more releases (tests/data/csynth/README.md: sources and licences): the
# figures as the XML states them. Per file: version, part, top, pipeline type, clocks
# (target, estimated), latency (best, worst), interval (min, max), resources used.
REAL = {
    "vivadohls_2019.1_mul_matrix.xml": (
        ("2019.1", "xc7z020-clg400-1", "mul_matrix", "none"),
        (10.0, 8.75),
        (8421409, 8421409),
        (8421410, 8421410),
        {"BRAM_18K": 2, "DSP": 192, "FF": 23310, "LUT": 21419, "URAM": 0},  # as DSP48E
    ),
    "vivadohls_2019.1.3_heterocl_stages_dataflow.xml": (
        ("2019.1.3", "xc7z020-clg484-1", "test", "dataflow"),
        (10.0, 6.186),
        (3137, 3137),
        (3138, 3138),
        {"BRAM_18K": 0, "DSP": 0, "FF": 299, "LUT": 912, "URAM": 0},
    ),
    "vitishls_2021.1_axi_stream_to_master_dataflow_undef.xml": (
        ("2021.1", "xcvu9p-flga2104-2-i", "example", "dataflow"),
        (5.0, 3.65),
        (None, None),  # undef: the stream's length is data
        (None, None),
        {"BRAM_18K": 8, "DSP": 0, "FF": 1664, "LUT": 2053, "URAM": 0},
    ),
    "vitishls_2021.2.1_fir_loop.xml": (
        ("2021.2.1", "xczu7ev-ffvc1156-2-e", "fir", "no"),
        (10.0, 1.996),
        (70, 70),
        (71, 71),
        {"BRAM_18K": 0, "DSP": 3, "FF": 340, "LUT": 363, "URAM": 0},
    ),
    "vitishls_2023.1_basic_output.xml": (
        ("2023.1", "xc7z030-sbg485-1", "basic_output", "no"),
        (10.0, 0.0),
        (0, 0),
        (1, 1),
        {"BRAM_18K": 0, "DSP": 0, "FF": 0, "LUT": 0, "URAM": 0},
    ),
    "vitishls_2023.2_streamhls_dataflow.xml": (
        ("2023.2", "xcu55c-fsvh2892-2L-e", "streamhls", "dataflow"),
        (5.0, 3.65),
        (165, 165),
        (91, 91),
        {"BRAM_18K": 30, "DSP": 48, "FF": 10567, "LUT": 6800, "URAM": 0},
    ),
}


@pytest.mark.parametrize("name", list(REAL))
def test_real_reports_of_several_releases(name: str) -> None:
    identity, clocks, latency, interval, used = REAL[name]
    r = load_synth_report(DATA / name)
    assert (r.version, r.part, r.top, r.pipeline_type) == identity
    assert (r.target_clock_ns, r.estimated_clock_ns) == clocks
    assert (r.latency_best, r.latency_worst) == latency
    assert (r.interval_min, r.interval_max) == interval
    assert r.used == used
    assert set(r.available) == set(used) and all(
        v and v > 0 for k, v in r.available.items() if k != "URAM"
    )


def test_the_loops_of_dataflow_processes_and_pipelined_modules() -> None:
    """Vitis puts each dataflow process and each pipelined loop in a module of its own:
    the loops are found there, with the module named."""

    def loops(name: str) -> list[tuple]:
        r = load_synth_report(DATA / name)
        return [(x.module, x.name, x.trip_count, x.latency, x.ii, x.depth) for x in r.loops]

    assert loops("vitishls_2023.2_streamhls_dataflow.xml") == [
        ("fetch_from_hbm", "VITIS_LOOP_16_1", 16, 88, 1, 74),
        ("process_kernel", "VITIS_LOOP_28_1", 16, 19, 1, 5),
        ("write_to_output_Pipeline_VITIS_LOOP_44_1", "VITIS_LOOP_44_1", 16, 17, 1, 3),
    ]
    assert loops("vitishls_2021.1_axi_stream_to_master_dataflow_undef.xml") == [
        ("getinstream", "VITIS_LOOP_38_1", None, None, 1, 2),
        ("streamtoparallelwithburst_Pipeline_VITIS_LOOP_24_2", "VITIS_LOOP_24_2", None, 2, 1, 3),
        ("streamtoparallelwithburst", "VITIS_LOOP_22_1", None, None, None, 2),
    ]
    assert loops("vitishls_2021.2.1_fir_loop.xml") == [("fir_Pipeline_loop", "loop", 57, 60, 1, 5)]
    mul = loops("vivadohls_2019.1_mul_matrix.xml")
    assert mul[0] == ("mul_matrix", "i_cycle", 32, 8421408, None, None)
    assert {x[1:] for x in mul[1:]} == {
        ("j_cycle", 2048, 4110, 2, 17),
        ("j_cycle", 2048, 4105, 2, 12),
    }


@pytest.mark.parametrize("name", list(REAL))
def test_a_truncated_real_report_is_one_error_line(tmp_path, capsys, name: str) -> None:
    data = (DATA / name).read_bytes()
    cut = tmp_path / "csynth.xml"
    cut.write_bytes(data[: len(data) * 2 // 3])
    assert main(["synth-report", str(cut)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {cut}"), err


def test_the_vitis_module_layout_with_undefined_latencies():
    r = parse_csynth(vitis_2022(steps_ii=2).encode(), "r.xml")
    assert r.version == "2022.2" and r.latency_best == 1000
    assert (r.latency_average, r.latency_worst, r.interval_max) == (None, None, None)
    assert r.used["DSP"] == 1100 and r.available["URAM"] == 960
    assert [
        (x.module, x.name, x.trip_count, x.latency, x.ii, x.depth, x.pipelined) for x in r.loops
    ] == [
        ("qk_stream", "rows", 16, 640, None, None, False),
        ("qk_stream", "steps", None, None, 2, 9, True),
    ]


def test_text_and_json_output(capsys, tmp_path):
    path = tmp_path / "csynth.xml"
    path.write_text(vitis_2022())
    assert main(["synth-report", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{path}: spatten_top on xcu280-fsvh2892-2L-e (report version 2022.2)"
    assert (
        out[2]
        == "latency (cycles): best 1,000, average undef, worst undef; interval 1,001 to undef (no)"
    )
    assert "| qk_stream | steps | undef | undef | 1 | 9 |" in out
    assert main(["synth-report", str(HLS4ML), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["vitis"]["latency"] == {"best": 10, "average": 10, "worst": 10}
    assert "model_vs_vitis" not in doc  # a bare report: nothing to compare with


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (HLS4ML.read_bytes()[:5000], "not a readable csynth.xml report"),
        (b"<results><a/></results>", "not a csynth.xml report (root <results>)"),
        (b"<profile><ReportVersion/></profile>", "no UserAssignments or PerformanceEstimates"),
        (
            b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            b"<profile>&b;</profile>",
            "refused",
        ),
        (b"", "not a readable csynth.xml report"),
    ],
    ids=["truncated", "other-xml", "no-sections", "entities", "empty"],
)
def test_a_malformed_report_is_one_error_line(tmp_path, capsys, content, message):
    path = tmp_path / "csynth.xml"
    path.write_bytes(content)
    with pytest.raises(InputError, match=re.escape(message)):
        load_synth_report(path)
    assert main(["synth-report", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: ") and err.count("\n") == 1


def test_a_directory_without_a_report_names_where_it_looked(tmp_path, capsys):
    assert main(["synth-report", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "spatten_top_hls/hls/syn/report/csynth.xml" in err and "make csynth" in err


def test_a_project_report_beside_the_model(tmp_path, capsys):
    project = tmp_path / "p"
    model = tmp_path / "tiny.json"
    model.write_text(
        json.dumps(
            {
                "model_type": "bert",
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "hidden_size": 64,
                "max_position_embeddings": 512,
            }
        )
    )
    config = tmp_path / "c.toml"
    config.write_text("[model]\nseq_len = 16\n")
    assert main(["compile", str(model), "--config", str(config), "-o", str(project)]) == 0
    capsys.readouterr()
    assert main(["report", str(project), "--json"]) == 0
    estimate = json.loads(capsys.readouterr().out)
    report = project / "spatten_top_hls" / "hls" / "syn" / "report" / "csynth.xml"
    report.parent.mkdir(parents=True)
    worst = int(estimate["latency_cycles"])  # per call; the run is 2 layers of 1 call each
    report.write_text(vitis_2022(worst=worst, dsp=estimate["resources"]["dsp"], steps_ii=5))
    assert main(["synth-report", str(project), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {r["quantity"]: r for r in doc["model_vs_vitis"]}
    latency = rows["run latency (cycles; Vitis: worst call x 2 calls)"]
    assert (latency["model"], latency["vitis"]) == (estimate["latency_cycles"], 2 * worst)
    assert latency["ratio"] == pytest.approx(2.0, abs=1e-4)
    assert rows["DSP"]["ratio"] == 1.0
    assert rows["clock period (ns)"]["model"] == pytest.approx(1000 / 300)
    # the qk stream's `steps` loop requests II = Cfg::QK_STREAM_II (params.h): 5 is above it
    params = (project / "src" / "params.h").read_text()
    qk_ii = int(params.split("QK_STREAM_II = ", 1)[1].split(";", 1)[0])
    (flag,) = doc["ii_above_requested"]
    assert (flag["module"], flag["loop"], flag["achieved"]) == ("qk_stream", "steps", 5)
    assert qk_ii <= flag["requested"] < 5  # the largest II a `steps` loop requests
    assert main(["synth-report", str(project)]) == 0
    text = capsys.readouterr().out
    assert "| run latency (cycles; Vitis: worst call x 2 calls) |" in text and "| 2.00 |" in text
    assert "II above the requested one: qk_stream/steps achieves II 5" in text
    # achieved at the bound: nothing flagged
    report.write_text(vitis_2022(worst=worst, steps_ii=flag["requested"]))
    assert main(["synth-report", str(project)]) == 0
    assert "no loop's achieved II is above the requested one" in capsys.readouterr().out
    # a project whose sources were removed: one error line, not a traceback
    (project / "src" / "params.h").unlink()
    assert main(["synth-report", str(project)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "params.h: no such project source" in err
    assert err.count("\n") == 1
