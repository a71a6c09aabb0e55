from payeasy.banks import bank_all, bank_get, bank_search, branch_get


def test_master_data_comes_from_zengin_code() -> None:
    banks = bank_all()
    assert len(banks) > 1000
    mizuho = bank_get("0001")
    assert mizuho is not None and mizuho.name == "みずほ" and mizuho.kana == "ﾐｽﾞﾎ"
    assert bank_get("9900").name == "ゆうちょ"
    assert bank_get("0000") is None
    branch = branch_get("0001", "001")
    assert branch is not None and branch.name == "東京営業部"


def test_search_by_name_kana_romaji_and_code() -> None:
    assert bank_search("みずほ")[0].code == "0001"
    assert bank_search("ﾐﾂｲｽﾐﾄﾓ")[0].code == "0009"
    assert bank_search("みついすみとも")[0].code == "0009"  # hiragana finds via kana
    assert bank_search("risona")[0].code == "0010"
    assert bank_search("0005")[0].code == "0005"
    assert bank_search("") == []
