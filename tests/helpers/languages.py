"""Posts in languages the bundled data does not have, all covered by USE Multilingual (code -> text)."""

from __future__ import annotations

UNSEEN: dict[str, str] = {
    "pt": "O atendimento foi excelente e a comida estava deliciosa, voltarei com certeza.",
    "it": "Il servizio era terribile e il cibo era freddo, non ci tornerò mai più.",
    "nl": "Het eten was heerlijk en de bediening was erg vriendelijk, wij komen zeker terug.",
    "pl": "Jedzenie było okropne, a obsługa bardzo niemiła, nigdy więcej tu nie przyjdę.",
    "tr": "Yemekler çok güzeldi ve personel çok yardımseverdi, kesinlikle tekrar geleceğim.",
    "ko": "음식이 정말 맛있었고 직원들도 아주 친절했어요. 꼭 다시 올게요.",
}
