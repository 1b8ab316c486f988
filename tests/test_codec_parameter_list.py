"""The ParameterValueStruct list decoder's fast path against the general reader it falls back to.

``_decode_parameter_value_list`` takes the shape nearly every device sends in one pass and hands anything else to
``_decode_parameter_value_list_slowly``. The two must never disagree: lists are generated with the irregular shapes
devices produce (children out of order, missing or doubled, qualified, typed with 1999 xsi or an unqualified
``type``, ``xsi:type`` on the Name too, empty texts, unknown extras) and both readers must give the same values.

(Not generated: one item holding two whole Name/Value pairs beside an item holding none, or a Value nested inside a
Name. The fast path pairs those by document order, the general reader by item; neither reading is more right for such
a document, which only its sender could have written, so the cost of telling them apart is not paid per value.)
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from cwmp_models import codec
from cwmp_models.envelope import NS_XSI, NS_XSI_1999
from cwmp_models.types import XsdType

_TYPED_TEXTS = {
    "xsd:string": st.text(alphabet="abc <>&\"'é", max_size=6),
    "xsd:unsignedInt": st.sampled_from(["0", "42", "-1", "4294967296", " 7 ", "x", ""]),
    "xsd:int": st.sampled_from(["-5", "2147483648", "1_0", ""]),
    "xsd:boolean": st.sampled_from(["true", "0", "TRUE", " false ", "yes", ""]),
    "xsd:dateTime": st.sampled_from(["2026-11-27T08:30:15Z", "2026-11-27T08:30:15", "0", ""]),
    "xsd:base64Binary": st.sampled_from(["AAEC", "!!", ""]),
    "xsd:hexBinary": st.sampled_from(["00ff", "zz", ""]),
    "string": st.just("bare"),
    "xsd:UnsignedInt": st.just("9"),
}

_TYPE_ATTRIBUTES = ["xsi:type", "xsi99:type", "type", None]


@st.composite
def _value(draw) -> str:
    declared = draw(st.sampled_from(sorted(_TYPED_TEXTS)))
    text = draw(_TYPED_TEXTS[declared])
    attribute = draw(st.sampled_from(_TYPE_ATTRIBUTES))
    typed = f' {attribute}="{declared}"' if attribute else ""
    return f"<Value{typed}>{_escape(text)}</Value>"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;")


@st.composite
def _item(draw) -> str:
    name = f"<Name>{_escape(draw(st.text(alphabet='Device.X1 ', max_size=8)))}</Name>"
    if draw(st.booleans()):
        name = name.replace("<Name>", '<Name xsi:type="xsd:string">')
    children = [name, draw(_value())]
    # Most items are regular; the rest are bent the ways devices bend them.
    bend = draw(st.sampled_from(["none"] * 6 + ["swap", "drop name", "drop value", "double name", "double value",
                                                "extra", "qualified", "empty"]))
    if bend == "swap":
        children.reverse()
    elif bend == "drop name":
        children = children[1:]
    elif bend == "drop value":
        children = children[:1]
    elif bend == "double name":
        children.insert(1, name.replace("Device", "Other"))
    elif bend == "double value":
        children.append(draw(_value()))
    elif bend == "extra":
        children.insert(draw(st.integers(0, 2)), "<Extra>1</Extra>")
    elif bend == "qualified":
        children = [child.replace("<Name", "<x:Name").replace("</Name", "</x:Name") for child in children]
    elif bend == "empty":
        children = []
    return f"<ParameterValueStruct>{''.join(children)}</ParameterValueStruct>"


def _list_element(items: list[str]) -> etree._Element:
    document = (
        f'<ParameterList xmlns:xsi="{NS_XSI}" xmlns:xsi99="{NS_XSI_1999}" xmlns:x="urn:x">{"".join(items)}'
        "</ParameterList>"
    )
    return etree.fromstring(document.encode(), codec._new_parser())


def test_fast_and_general_readers_agree_on_irregular_lists():
    @settings(max_examples=400, deadline=None)
    @given(st.lists(_item(), max_size=6))
    def check(items):
        element = _list_element(items)
        assert codec._decode_parameter_value_list(element) == codec._decode_parameter_value_list_slowly(element)

    check()


def test_a_value_without_type_does_not_make_a_1999_typed_one_a_string():
    # The decoder caches each xsi:type spelling; a missing 2001 type must never be cached as "string", or a later
    # Value typed with 1999 xsi would be read as a string without reaching the general reader.
    untyped = _list_element(["<ParameterValueStruct><Name>A</Name><Value>5</Value></ParameterValueStruct>"])
    assert codec._decode_parameter_value_list(untyped)[0].type is XsdType.STRING
    typed_1999 = _list_element(
        ['<ParameterValueStruct><Name>B</Name><Value xsi99:type="xsd:unsignedInt">5</Value></ParameterValueStruct>']
    )
    (item,) = codec._decode_parameter_value_list(typed_1999)
    assert (item.type, item.value) == (XsdType.UNSIGNED_INT, 5)


def test_a_doubled_name_is_not_paired_with_the_next_items_value():
    # Taken two by two, the Name/Value elements here pair up wrongly from the doubled Name on; the decoder must notice
    # and read the items one by one (the last Name of an item wins, as everywhere in the general reader).
    element = _list_element([
        "<ParameterValueStruct><Name>A</Name><Name xsi:type='xsd:string'>B</Name>"
        "<Value xsi:type='xsd:string'>1</Value></ParameterValueStruct>",
        "<ParameterValueStruct><Name>C</Name><Value xsi:type='xsd:string'>2</Value></ParameterValueStruct>",
    ])
    names = [item.name for item in codec._decode_parameter_value_list(element)]
    assert names == ["B", "C"]
