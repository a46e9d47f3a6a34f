import nbripple as nr


def test_value_round_trip_and_query(home):
    model = nr.Artifact("blessed_model", partition_keys=["blessed"])
    for blessed in ("false", "true", "false"):
        model.create_from({"blessed": blessed}, blessed=blessed)
    assert nr.get("nbripple://blessed_model?blessed=true").ref == "blessed_model@2"
    assert nr.load(model.query(blessed="true")) == {"blessed": "true"}
