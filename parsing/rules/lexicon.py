"""The reader's words, per language, as data: adding a language or a phrasing is an edit here, not a new regex.

Each language maps a *category* to the words (or short phrases) that mean it. The categories:

- ``entry``, ``stop``, ``target``, ``leverage``: field labels; the numbers after a label belong to that field;
- ``long``, ``short``: directions; ``market``: "enter at the market price";
- ``tp_hit``: "target reached" (the target's number is read beside it); ``stop_hit``: "stopped out";
- ``close``: close the position (all of it unless a share is given); ``close_half``: close half;
- ``keep``: "keep N %" (the rest is closed: "保留25%底仓" closes 75 %);
- ``all_done``: every target reached / trade fully done; ``cancel``: cancel, no longer valid;
- ``move``: "move / set" (with a stop word: a stop move); ``breakeven``: break-even on its own ("БУ", "保本");
  ``entry_price``: the entry as a place for the stop, only after a stop word ("move SL to entry");
- ``partial``: part of the position, share not said ("Снял часть") -> a partial close the user must size;
- ``add``: add to the position (an update, never a new entry); ``filled``: an entry order was filled;
- ``nicknames``: coin nickname -> ticker.

Latin and Cyrillic words match at word boundaries, case-insensitively; CJK words anywhere. Words are matched on
normalized text (see ``normalize.py``), so write them in their plain form (no full-width letters).
The README's language table is generated from this module (``python -m parsing.rules.lexicon``) and a test keeps
it in sync.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

Category = str

CATEGORIES: tuple[Category, ...] = (
    "entry", "stop", "target", "leverage", "long", "short", "market", "tp_hit", "stop_hit", "close", "close_half",
    "keep", "all_done", "cancel", "move", "breakeven", "entry_price", "partial", "add", "filled",
)

LANGUAGES: dict[str, str] = {
    "en": "English", "ru": "Russian", "zh": "Chinese (simplified and traditional)", "tr": "Turkish",
    "vi": "Vietnamese", "es": "Spanish", "pt": "Portuguese", "fa": "Persian", "ar": "Arabic",
    "id": "Indonesian", "ko": "Korean",
}

LEXICON: dict[str, dict[Category, tuple[str, ...]]] = {
    "en": {
        "filled": ("entry filled", "filled", "entered", "entry triggered", "order filled", "limit filled"),
        "entry": ("entry", "entries", "entry zone", "entry price", "entry point", "entry points", "entry targets",
                  "entry orders", "entry range", "entry market", "entry limit", "buy zone", "buy around", "buy at",
                  "limit"),
        "stop": ("stop loss", "stop-loss", "stoploss", "stop", "sl", "invalidation"),
        "target": ("take profit", "take-profit", "take profits", "targets", "target", "tp", "selling targets",
                   "profit targets"),
        "leverage": ("leverage", "lev"),
        "long": ("long", "buy", "bullish"),
        "short": ("short", "sell", "bearish"),
        "market": ("market", "market price", "at market", "cmp", "current price", "now", "entry now", "enter now"),
        "tp_hit": ("hit", "reached", "achieved", "done", "smashed", "touched", "triggered", "taken"),
        "stop_hit": ("stopped out", "stop hit", "sl hit", "hit sl", "hit stop", "hit stop loss", "stop loss hit",
                     "stoploss hit", "closed at stop", "closed at stop loss", "closed at trailing stop loss"),
        "close": ("close", "closed", "closing", "exit", "book profits", "book profit", "take profits now", "fix",
                  "secure", "book", "take off", "take some profits", "take some profit", "take partial profits",
                  "secured", "booked", "took profit", "took profits", "took some profit", "sold",
                  "secure profits", "close position", "close the position", "take profit now"),
        "close_half": ("close half", "take half", "book half", "secure half", "half position", "half of the position"),
        "keep": ("keep", "leave", "remaining", "the rest"),
        "all_done": ("all targets achieved", "all targets hit", "all targets done", "all take-profit targets achieved",
                     "all take profit targets achieved", "all tp hit", "all tps hit", "close all",
                     "close all positions", "close everything", "closed manually", "manually closed",
                     "closed due to opposite", "close full"),
        "cancel": ("cancel", "cancelled", "canceled", "no longer valid", "invalid", "not valid", "skip this",
                   "void"),
        "move": ("move", "moved", "set", "update", "shift", "trail", "new", "adjust", "raise"),
        "breakeven": ("breakeven", "break even", "break-even", "risk free", "risk-free", "riskfree"),
        "entry_price": ("be", "entry", "entry price", "entries", "cost", "open price", "average entry"),
        "partial": ("partial", "partially", "part of", "some profits", "some profit"),
        "add": ("add", "added", "adding", "dca", "re-entry", "reentry", "average down", "add to position"),
    },
    "ru": {
        "filled": ("лимитка взялась", "вход исполнен", "вошли", "ордер исполнен", "лимитка сработала"),
        "entry": ("вход", "входа", "точка входа", "зона входа", "вход лимиткой", "лимитка", "вход по", "открытие",
                  "вхід", "точка входу"),
        "stop": ("стоп", "стоп лосс", "стоп-лосс", "стоплосс", "сл"),
        "target": ("тейк", "тейки", "тейк профит", "тейк-профит", "цель", "цели", "тп", "ціль", "цілі"),
        "leverage": ("плечо", "плеча", "кредитное плечо"),
        "long": ("лонг", "покупка"),
        "short": ("шорт", "продажа"),
        "market": ("по рынку", "рынок", "рынка", "по текущим", "с текущих", "текущая цена", "маркет"),
        "tp_hit": ("взят", "взята", "достигнут", "достигнута", "взяли", "отработал", "отработала", "сработал",
                   "выбило", "выбил"),
        "stop_hit": ("стоп выбило", "выбило стоп", "стоп сработал", "словили стоп", "закрылись по стопу",
                     "выбило по стопу"),
        "close": ("закрыть", "закрываем", "закрываю", "закрыл", "закрыли", "закрывайте", "закройте", "закрити",
                  "закриваємо",
                  "фиксируем", "фиксирую", "фикс", "прикроем", "выходим", "снял часть", "скинул часть"),
        "close_half": ("половину", "половина", "половинку"),
        "keep": ("оставляем", "оставить", "оставляю", "остаток", "остальное"),
        "all_done": ("все цели взяты", "все цели достигнуты", "все тейки взяты", "закрыть все", "закрываю все",
                     "закрываем все", "все позиции", "полностью реализована", "сделка закрыта"),
        "cancel": ("отмена", "отменяем", "отменить", "отменён", "отменен", "не актуально", "неактуально", "скасування",
                   "скасовуємо",
                   "уберем лимитки", "убираем лимитки"),
        "move": ("перенести", "переносим", "передвигаем", "переставил", "переставляем", "двигаем", "стоп на", "в"),
        "breakeven": ("бу", "б/у", "безубыток", "безубыт", "безубыточность", "в ноль", "беззбиток"),
        "entry_price": ("точку входа", "вход", "входа", "цену входа"),
        "partial": ("часть", "частично", "частичная"),
        "add": ("добор", "доливка", "усреднение", "добавляем", "докупаем"),
    },
    "zh": {
        "filled": ("已成交", "挂单成交", "掛單成交", "已入场", "已進場", "已进场", "进场了", "入场了", "進場了",
                   "成交了"),
        "entry": ("入场", "進場", "进场", "入場", "开仓", "開倉", "开仓价", "入场价", "进场位", "挂单", "掛單", "再挂",
                  "建仓", "建倉", "买入", "買入"),
        "stop": ("止损", "止損", "止损位", "止損位", "保护价", "保護價", "防守位", "损", "損"),
        "target": ("止盈", "止盈位", "目标", "目標", "目标位", "目標位", "止赢"),
        "leverage": ("杠杆", "槓桿"),
        "long": ("做多", "开多", "開多", "多单", "多單", "市价多", "市價多", "现价多", "現價多", "直接多",
                 "附近多", "附近做多"),
        "short": ("做空", "开空", "開空", "空单", "空單", "市价空", "市價空", "现价空", "現價空", "直接空",
                  "附近空", "附近做空"),
        "market": ("市价", "市價", "现价", "現價"),
        "tp_hit": ("已到达", "已到達", "到达", "到達", "达标", "達標", "已达", "已達", "已到", "到了", "来了", "已过",
                   "达成", "達成", "完成", "触及", "触发", "觸發", "手动", "手動", "到位"),
        "stop_hit": ("止损出局", "止損出局", "打止损", "被止损", "止损了", "止損了", "止损打掉", "止損打掉", "打损",
                     "止损被打", "止損被打", "扫损", "掃損"),
        "close": ("平仓", "平倉", "减仓", "減倉", "平掉", "离场", "離場", "出局", "走掉", "可走", "全部止盈",
                  "止盈离场", "止盈出局", "出场", "出場", "止盈出場", "止盈離場"),
        "close_half": ("平一半", "减仓一半", "減倉一半", "减半", "減半", "止盈一半", "出一半", "走一半"),
        "keep": ("保留", "留", "剩余仓位", "剩餘倉位", "剩余", "剩下"),
        "all_done": ("全部平仓", "全部平倉", "全平", "止盈掉", "全部止盈", "全部出局"),
        "cancel": ("取消", "撤单", "撤單", "不做了", "作废", "作廢"),
        "move": ("移至", "移到", "上移", "下移", "改为", "改為", "调整到", "调整为", "移动", "推", "设置",
                 "修改", "改成"),
        "breakeven": ("保本", "成本保护", "成本保護", "成本防守", "成本損", "成本损", "无风险持仓", "無風險持倉"),
        "entry_price": ("开仓价", "開倉價", "成本价", "成本價", "成本", "入场价", "入場價", "进场价"),
        "partial": ("分批", "部分", "一部分"),
        "add": ("加仓", "加倉", "补仓", "補倉"),
    },
    "tr": {
        "filled": ("giriş gerçekleşti", "emir doldu", "girildi"),
        "entry": ("giriş", "giris", "alım", "alim", "giriş bölgesi", "alış"),
        "stop": ("stop", "stopu", "stopunu", "stoplar", "zarar durdur", "zarar kes", "stop loss"),
        "target": ("hedef", "hedefler", "kar al", "tp"),
        "leverage": ("kaldıraç", "kaldirac"),
        "long": ("long", "alım", "alış"),
        "short": ("short", "satış"),
        "market": ("piyasa", "piyasadan", "market"),
        "tp_hit": ("geldi", "ulaştı", "vurdu", "gerçekleşti", "alındı", "tamamlandı"),
        "stop_hit": ("stop olduk", "stop oldu", "stopa takıldı"),
        "close": ("kapat", "kapatın", "kapatıyoruz", "kapattık", "kapatildi", "kapatıldı", "pozisyonu kapat",
                  "kar al", "kâr al"),
        "close_half": ("yarısını", "yarisini", "yarım"),
        "keep": ("bırak", "tut"),
        "all_done": ("tüm hedefler", "hepsini kapat", "tümünü kapat", "hedefler tamamlandı", "tüm hedefler tamamlandı"),
        "cancel": ("iptal", "geçersiz", "gecersiz"),
        "move": ("taşı", "çek", "çekin", "çekiyoruz", "güncelle"),
        "breakeven": ("başabaş", "basabas"),
        "entry_price": ("giriş", "girişe", "giriş fiyatı", "giriş seviyesi", "maliyet", "maliyete"),
        "partial": ("kısmi", "bir kısmını"),
        "add": ("ekle", "ekleme", "kademe"),
    },
    "vi": {
        "filled": ("đã khớp", "khớp lệnh", "đã vào lệnh"),
        "entry": ("vào lệnh", "vùng vào lệnh", "điểm vào", "vùng vào", "entry", "giá vào"),
        "stop": ("cắt lỗ", "dừng lỗ", "sl", "stop"),
        "target": ("chốt lời", "mục tiêu", "tp"),
        "leverage": ("đòn bẩy", "đòn bấy"),
        "long": ("mua", "long"),
        "short": ("bán", "short"),
        "market": ("giá thị trường", "thị trường", "giá hiện tại"),
        "tp_hit": ("đã chạm", "chạm", "đạt", "đã đạt", "hit"),
        "stop_hit": ("dính sl", "chạm sl", "hit sl", "cắt lỗ rồi"),
        "close": ("đóng lệnh", "đóng", "thoát lệnh", "chốt lời", "chốt"),
        "close_half": ("một nửa", "nửa"),
        "keep": ("giữ", "giữ lại"),
        "all_done": ("đóng toàn bộ", "đóng hết", "chốt hết", "full tp", "hoàn thành tất cả"),
        "cancel": ("hủy", "huỷ", "hủy lệnh", "huỷ lệnh", "bỏ lệnh", "không còn hiệu lực"),
        "move": ("dời", "dời sl", "kéo", "kéo sl", "di chuyển", "lên", "về"),
        "breakeven": ("hòa vốn", "hoà vốn"),
        "entry_price": ("điểm vào", "entry", "giá vào"),
        "partial": ("một phần",),
        "add": ("nhồi", "thêm", "dca"),
    },
    "es": {
        "filled": ("entrada activada", "orden ejecutada"),
        "entry": ("entrada", "zona de entrada", "precio de entrada", "rango operativo"),
        "stop": ("stop", "stop loss", "sl", "parada"),
        "target": ("objetivo", "objetivos", "tp", "toma de ganancias"),
        "leverage": ("apalancamiento",),
        "long": ("largo", "compra", "comprar", "long", "buy"),
        "short": ("corto", "venta", "vender", "short", "sell"),
        "market": ("a mercado", "precio de mercado", "precio actual"),
        "tp_hit": ("alcanzado", "tocado", "logrado", "cumplido"),
        "stop_hit": ("stop tocado", "saltó el stop", "salto el stop"),
        "close": ("cerrar", "cerramos", "cerrado", "cierre", "cierren", "cerrad", "salir"),
        "close_half": ("la mitad", "mitad"),
        "keep": ("mantener", "dejar", "dejamos"),
        "all_done": ("todos los objetivos", "cerrar todo", "cerramos todo"),
        "cancel": ("cancelar", "cancelado", "cancelamos", "anulado", "ya no es válido", "ya no es valido"),
        "move": ("mover", "movemos", "mové", "subir", "subimos", "pasar"),
        "breakeven": ("break even", "breakeven", "punto de equilibrio"),
        "entry_price": ("precio de entrada", "entrada"),
        "partial": ("parcial", "parcialmente", "una parte"),
        "add": ("añadir", "agregar", "promediar"),
    },
    "pt": {
        "filled": ("entrada ativada", "ordem executada"),
        "entry": ("entrada", "zona de entrada", "preço de entrada"),
        "stop": ("stop", "stop loss", "sl"),
        "target": ("alvo", "alvos", "objetivo", "tp"),
        "leverage": ("alavancagem",),
        "long": ("compra", "comprar", "long"),
        "short": ("venda", "vender", "short"),
        "market": ("a mercado", "preço de mercado", "preço atual"),
        "tp_hit": ("atingido", "alcançado", "batido", "bateu"),
        "stop_hit": ("stopado", "stop atingido", "bateu o stop"),
        "close": ("fechar", "fechamos", "fechado", "fechem", "encerrar", "sair"),
        "close_half": ("metade",),
        "keep": ("manter", "deixar"),
        "all_done": ("todos os alvos", "fechar tudo", "fechamos tudo"),
        "cancel": ("cancelar", "cancelado", "cancelada", "anulado", "não é mais válido"),
        "move": ("mover", "movemos", "subir", "subimos", "passar"),
        "breakeven": ("break even", "breakeven", "zero a zero"),
        "entry_price": ("preço de entrada", "entrada"),
        "partial": ("parcial", "parcialmente", "uma parte"),
        "add": ("adicionar", "aumentar", "preço médio"),
    },
    "fa": {
        "filled": ("ورود فعال شد",),
        "entry": ("ورود", "نقطه ورود", "قیمت ورود"),
        "stop": ("حد ضرر", "استاپ", "استاپ لاس"),
        "target": ("حد سود", "تارگت", "هدف"),
        "leverage": ("اهرم", "لوریج"),
        "long": ("لانگ", "خرید"),
        "short": ("شورت", "فروش"),
        "market": ("قیمت بازار", "مارکت"),
        "tp_hit": ("فعال شد", "رسید", "تاچ شد", "خورد"),
        "stop_hit": ("حد ضرر خورد", "استاپ خورد", "استاپ شد"),
        "close": ("ببندید", "بستن", "بسته شد", "خارج شوید"),
        "close_half": ("نصف", "نیمی"),
        "keep": ("نگه دارید",),
        "all_done": ("تکلیف سیگنال مشخص شد", "همه تارگت", "همه اهداف"),
        "cancel": ("لغو", "کنسل", "باطل"),
        "move": ("جابجا", "منتقل", "ببرید"),
        "breakeven": ("سربهسر", "سربه سر", "سر به سر"),
        "entry_price": ("نقطه ورود", "قیمت ورود"),
        "partial": ("بخشی",),
        "add": ("اضافه", "پله"),
    },
    "ar": {
        "filled": ("تم الدخول", "تفعيل الدخول"),
        "entry": ("الدخول", "دخول", "نقطة الدخول", "سعر الدخول", "منطقة الدخول"),
        "stop": ("وقف الخسارة", "وقف الخساره", "ستوب", "وقف"),
        "target": ("الهدف", "الأهداف", "الاهداف", "هدف", "أهداف", "اهداف"),
        "leverage": ("الرافعة", "رافعة", "الرافعه"),
        "long": ("شراء", "لونج"),
        "short": ("بيع", "شورت"),
        "market": ("سعر السوق", "من السوق"),
        "tp_hit": ("تحقق", "تم تحقيق", "ضرب"),
        "stop_hit": ("ضرب الستوب", "ضرب وقف الخسارة"),
        "close": ("إغلاق", "اغلاق", "أغلق", "اغلق", "أغلقنا", "اغلقنا"),
        "close_half": ("النصف", "نصف"),
        "keep": ("الإبقاء", "ابق"),
        "all_done": ("تحققت جميع الأهداف", "جميع الأهداف", "إغلاق الكل", "اغلاق الكل"),
        "cancel": ("إلغاء", "الغاء", "ملغاة", "ملغي"),
        "move": ("نقل", "انقل", "حرك", "تحريك"),
        "breakeven": ("نقطة التعادل",),
        "entry_price": ("سعر الدخول", "الدخول"),
        "partial": ("جزء", "جزئي"),
        "add": ("تعزيز", "إضافة"),
    },
    "id": {
        "filled": ("entry terisi", "sudah masuk"),
        "entry": ("entry", "masuk", "area masuk", "harga masuk", "beli di"),
        "stop": ("stop loss", "sl", "stop", "batas rugi"),
        "target": ("target", "tp", "ambil untung"),
        "leverage": ("leverage", "lev"),
        "long": ("long", "beli"),
        "short": ("short", "jual"),
        "market": ("harga pasar", "market"),
        "tp_hit": ("kena", "tercapai", "sentuh", "tersentuh"),
        "stop_hit": ("kena sl", "kena stop"),
        "close": ("tutup", "tutup posisi", "keluar"),
        "close_half": ("setengah", "separuh"),
        "keep": ("sisakan", "tahan"),
        "all_done": ("semua target", "tutup semua"),
        "cancel": ("batal", "dibatalkan", "batalkan", "tidak berlaku"),
        "move": ("pindah", "pindahkan", "geser", "naikkan"),
        "breakeven": ("titik impas", "impas"),
        "entry_price": ("harga masuk", "entry"),
        "partial": ("sebagian",),
        "add": ("tambah", "tambahkan", "tambah posisi"),
    },
    "ko": {
        "filled": ("체결", "진입 완료"),
        "entry": ("진입", "진입가", "진입 구간", "매수가"),
        "stop": ("손절", "손절가", "스탑"),
        "target": ("목표", "목표가", "익절", "익절가"),
        "leverage": ("레버리지", "배율"),
        "long": ("롱", "매수"),
        "short": ("숏", "매도"),
        "market": ("시장가", "현재가"),
        "tp_hit": ("도달", "달성", "터치"),
        "stop_hit": ("손절 당함", "손절됨", "손절 완료"),
        "close": ("청산", "종료", "정리", "익절"),
        "close_half": ("절반",),
        "keep": ("유지", "남기"),
        "all_done": ("전체 청산", "모든 목표", "전량 청산"),
        "cancel": ("취소", "무효"),
        "move": ("이동", "올림", "상향"),
        "breakeven": ("본절",),
        "entry_price": ("진입가", "평단"),
        "partial": ("일부", "분할"),
        "add": ("추가 진입", "물타기", "불타기"),
    },
}

# Words of a results recap ("Weekly results", "итоги", "战绩"): a post naming several coins with one of these reports,
# it instructs nothing.
RECAP_WORDS: tuple[str, ...] = (
    "results", "result", "recap", "summary", "report", "weekly", "performance", "statistics", "stats",
    "итог", "итоги", "результаты", "статистика", "отчет", "отчёт", "战绩", "戰績", "结果", "結果", "总结", "總結",
    "复盘",
    "sonuçlar", "özet", "rapor", "kết quả", "tổng kết", "thống kê", "resultados", "resumen", "resumo", "نتایج",
    "گزارش", "النتائج", "ملخص", "تقرير", "hasil", "rekap", "laporan", "결과", "요약",
)

# Words of a suggestion or an opinion ("could short near 65000", "можно", "可以", "观察"): a direction and a price
# with these, and neither stop nor targets, are commentary, not a signal.
HEDGES: tuple[str, ...] = (
    "could", "might", "maybe", "perhaps", "potential", "possible", "consider", "watching", "watch", "wait for",
    "looking for", "looks like", "i think", "idea", "можно", "возможно", "смотрим", "наблюдаю", "жду", "думаю",
    "可以", "可能", "观察", "觀察", "考虑", "考慮", "建议", "建議", "或许", "也许", "激进", "激進",
    "belki", "olabilir", "izliyorum", "có thể", "theo dõi", "quizás", "podría", "tal vez", "talvez", "poderia",
    "mungkin", "bisa", "ربما", "شاید", "아마", "관망",
)

# Words that negate the verb after them ("don't close yet", "не закрываем", "不要平仓", "đừng đóng").
NEGATIONS: tuple[str, ...] = (
    "don't", "dont", "do not", "never", "not", "no need to", "without", "wait before", "не", "нельзя", "не надо",
    "不要", "别", "不用", "勿", "不", "đừng", "không", "chưa", "no", "nunca", "não", "jangan", "tidak", "belum",
    "لا", "نه", "نباید", "asla", "sakın",
)

# Ordinal words -> number, for "first target hit", "второй тейк", "الهدف الأول", "2. hedef".
ORDINALS: dict[str, int] = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5,
    "первый": 1, "первая": 1, "первую": 1, "второй": 2, "вторая": 2, "вторую": 2, "третий": 3, "третья": 3,
    "третью": 3, "четвертый": 4, "четвёртый": 4, "пятый": 5,
    "birinci": 1, "ikinci": 2, "üçüncü": 3, "dördüncü": 4, "1.": 1, "2.": 2, "3.": 3, "4.": 4, "5.": 5,
    "đầu tiên": 1, "thứ nhất": 1, "thứ hai": 2, "thứ ba": 3, "thứ tư": 4,
    "primer": 1, "primero": 1, "primera": 1, "segundo": 2, "segunda": 2, "tercer": 3, "tercero": 3, "tercera": 3,
    "primeiro": 1, "terceiro": 3, "quarto": 4,
    "الأول": 1, "الاول": 1, "الثاني": 2, "الثالث": 3, "الرابع": 4, "اول": 1, "دوم": 2, "سوم": 3, "چهارم": 4,
    "pertama": 1, "kedua": 2, "ketiga": 3, "keempat": 4, "첫번째": 1, "첫 번째": 1, "두번째": 2, "두 번째": 2,
    "세번째": 3, "세 번째": 3,
}

# Coin nicknames and local names -> ticker. Lower-case bare names of well-known coins are read as coins only
# beside a signal word (see symbols.py); these are always coins.
NICKNAMES: dict[str, str] = {
    "比特币": "BTC", "比特幣": "BTC", "大饼": "BTC", "大餅": "BTC", "比特": "BTC",
    "以太坊": "ETH", "以太币": "ETH", "以太幣": "ETH", "以太": "ETH", "姨太": "ETH", "二饼": "ETH", "二餅": "ETH",
    "狗狗币": "DOGE", "狗狗幣": "DOGE", "瑞波币": "XRP", "莱特币": "LTC", "索拉纳": "SOL",
    "биткоин": "BTC", "биток": "BTC", "эфириум": "ETH",
    "بيتكوين": "BTC", "بیت کوین": "BTC", "اتریوم": "ETH", "إيثريوم": "ETH",
    "비트코인": "BTC", "비트": "BTC", "이더리움": "ETH", "이더": "ETH", "리플": "XRP", "솔라나": "SOL",
    "bitcoin": "BTC", "ethereum": "ETH", "solana": "SOL", "ripple": "XRP", "dogecoin": "DOGE",
}

# Tickers read in lower case too, in a coin's place only (opening a line, beside a direction or an update verb).
# Tickers that are also common words somewhere ("near", "link", "dot", "ton", "op", "ada", "hype", "etc") are
# coins only when written in capitals or tagged.
BARE_COINS: frozenset[str] = frozenset(
    {"btc", "eth", "sol", "xrp", "doge", "bnb", "avax", "ltc", "trx", "sui", "pepe", "arb", "aave", "inj", "bch",
     "shib", "wld", "tia", "sei", "ena", "ondo", "xlm", "hbar", "kas", "fet", "rndr", "ftm", "matic", "pol"}
)


def words(category: Category, languages: Iterable[str] | None = None) -> list[str]:
    """Every word of a category (all languages unless given), longest first, without duplicates."""
    chosen = LEXICON if languages is None else {code: LEXICON[code] for code in languages}
    found = {word for entry in chosen.values() for word in entry.get(category, ())}
    return sorted(found, key=lambda w: (-len(w), w))


def _is_wordlike(word: str) -> bool:
    return bool(re.search(r"[A-Za-zÀ-ɏА-Яа-яЁё\u0600-\u06ff]", word))


def word_pattern(word: str) -> str:
    """A regex for one lexicon word: spaces match any run of spaces or hyphens; Latin/Cyrillic/Arabic-script words
    are bounded so "sl" never matches inside "slow", CJK and Hangul words match anywhere."""
    body = r"[\s\-]*".join(re.escape(part) for part in re.split(r"[\s\-]+", word) if part)
    if _is_wordlike(word):
        return rf"(?<![\w]){body}(?![\w])"
    return body


def _body(word: str) -> str:
    return r"[\s\-]*".join(re.escape(part) for part in re.split(r"[\s\-]+", word) if part)


_SEP = "\x00"  # a space or hyphen inside a lexicon word: any run of spaces or hyphens in the text


def _trie(chosen: Iterable[str]) -> str:
    """Words as one regex trie ("clos(?:e(?:d)?|ing)"): shared prefixes are matched once, and the greedy optional
    tails try the longest word first, as a longest-first alternation would."""
    root: dict[str, dict] = {}  # type: ignore[type-arg]
    for word in chosen:
        node = root
        for char in re.sub(r"[\s\-]+", _SEP, word.strip().lower()):
            node = node.setdefault(char, {})
        node[""] = {}

    def emit(node: dict) -> str:  # type: ignore[type-arg]
        branches = [(r"[\s\-]*" if char == _SEP else re.escape(char)) + emit(child)
                    for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if "" in node:
            return "(?:" + body + ")?"
        return body

    return emit(root)


def alternation(chosen: Iterable[str]) -> str:
    """A regex source for words, matched case-insensitively and longest first. The bounded words share one pair of
    boundaries and one trie, the CJK/Hangul ones another trie matching anywhere; a look-ahead on the possible first
    characters lets the engine skip most positions (the reader runs these on every post)."""
    unique = {word for word in chosen if word.strip()}
    bounded = [word for word in unique if _is_wordlike(word)]
    free = [word for word in unique if not _is_wordlike(word)]
    parts = []
    if bounded:
        parts.append(r"(?<!\w)" + _trie(bounded) + r"(?!\w)")
    if free:
        parts.append(_trie(free))
    if not parts:
        return r"(?!x)x"
    firsts = {char for word in unique for char in (word.strip()[0].lower(), word.strip()[0].upper())}
    return "(?=[" + "".join(re.escape(char) for char in sorted(firsts)) + "])(?:" + "|".join(parts) + ")"


@cache
def pattern(category: Category, *, exclude: tuple[str, ...] = ()) -> re.Pattern[str]:
    """One compiled alternation of every word of a category (longest first), case-insensitive."""
    return re.compile(alternation(word for word in words(category) if word not in exclude), re.IGNORECASE)


def readme_table() -> str:
    """The Markdown table of languages and their core words (kept in sync with README.md by a test)."""
    shown = ("entry", "stop", "target", "leverage", "long", "short", "market", "close", "cancel", "breakeven")
    lines = ["| language | " + " | ".join(shown) + " |", "|---|" + "---|" * len(shown)]
    for code, name in LANGUAGES.items():
        cells = [", ".join(LEXICON[code].get(category, ())[:4]).replace("|", "\\|") for category in shown]
        lines.append(f"| {name} (`{code}`) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def guess_language(text: str) -> str:
    """A rough language of a post, by script and then by lexicon hits (for reports; never for reading)."""
    if re.search(r"[\uac00-\ud7af]", text):
        return "ko"
    if re.search(r"[\u4e00-\u9fff]", text):
        return "zh"
    if re.search(r"[پچژگکی]", text):
        return "fa"
    if re.search(r"[\u0600-\u06ff]", text):
        return "ar"
    if re.search(r"[А-Яа-яЁё]", text):
        return "ru"
    if re.search(r"[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]", text, re.IGNORECASE):
        return "vi"
    if re.search(r"[ğışİ]", text) or re.search(r"(?i)\b(?:giriş|hedef|kaldıraç|kapat)\b", text):
        return "tr"
    lowered = text.lower()
    scores = {code: 0 for code in ("es", "pt", "id")}
    for code in scores:
        for category in ("entry", "close", "cancel", "target"):
            for word in LEXICON[code].get(category, ()):
                if word not in LEXICON["en"].get(category, ()) and re.search(word_pattern(word), lowered):
                    scores[code] += 1
    best = max(scores, key=lambda code: scores[code])
    return best if scores[best] else "en"


def write_readme(path: str) -> None:
    """Replace the table between the lexicon-table markers of a README with the current one."""
    from pathlib import Path

    readme = Path(path)
    text = readme.read_text(encoding="utf-8")
    start_marker, end_marker = "<!-- lexicon-table:start -->\n", "<!-- lexicon-table:end -->"
    start, end = text.index(start_marker) + len(start_marker), text.index(end_marker)
    readme.write_text(text[:start] + readme_table() + "\n" + text[end:], encoding="utf-8")


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--readme"]:
        write_readme(sys.argv[2] if len(sys.argv) > 2 else "README.md")
    else:
        print(readme_table())
