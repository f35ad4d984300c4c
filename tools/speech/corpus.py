"""Text corpus for synthetic speech: sentences written for this project (no external text), plus random word
sequences drawn from per-language word lists. `texts(lang, rng, n)` returns n texts mixing both.

Languages and their espeak-ng voices (language part of the voice name; a variant such as "+m3" is added later).
"""

from __future__ import annotations

import numpy as np

VOICES = {
    "en": ["en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-029"],
    "de": ["de"],
    "fr": ["fr", "fr-be"],
    "es": ["es", "es-419"],
    "it": ["it"],
    "nl": ["nl"],
    "pl": ["pl"],
    "sv": ["sv"],
    "cs": ["cs"],
    "pt": ["pt", "pt-br"],
}

SENTENCES = {
    "en": [
        "Hello, I am a talking head, and I move my mouth when I speak.",
        "Bob bought a big map of the port before the boat left.",
        "Please pass me the paper and the purple pen.",
        "My mother made marmalade from plums in the morning.",
        "The weather was warm, so we walked by the water.",
        "Five violins were playing a very fine melody.",
        "Think about those three things, then breathe.",
        "She should choose the cheaper shoes, shouldn't she?",
        "Could you check the clock in the kitchen, Greg?",
        "Zebras sit still while the sun sets slowly.",
        "Run, rabbit, run! The red fox is right behind you.",
        "A yellow kite flew high above the quiet village.",
        "Good morning. How are you today? I'm fine, thanks.",
        "Numbers like 42 and 1999 are read as words.",
        "Maybe the ambulance will come by at about ten past nine.",
        "Open your eyes, take a deep breath, and count to five.",
        "Jim and Pam jumped into the pool at midnight.",
        "Every bottle on the bottom shelf was empty.",
        "The museum opens at noon on Mondays and Thursdays.",
        "We measured the pleasure of leisure with a ruler.",
        "Who would have thought that a mop could be so useful?",
        "Papa placed the pumpkin pie beside the window.",
    ],
    "de": [
        "Guten Morgen, ich bin ein sprechender Kopf.",
        "Bitte bring mir das Brot und die Butter.",
        "Im Sommer fahren wir mit dem Boot auf den See.",
        "Meine Mutter macht am Montag Pfannkuchen.",
        "Zwölf Vögel sitzen zwischen den Zweigen.",
        "Die Schule beginnt um acht Uhr am Morgen.",
        "Warum ist der Himmel blau und nicht grün?",
        "Ich möchte heute Abend ein Buch lesen.",
        "Der Bäcker backt frische Brötchen für das Frühstück.",
        "Peter packt seine Tasche und geht zum Bahnhof.",
        "Die Kinder spielen fröhlich im Garten.",
        "Es regnet schon seit drei Tagen ohne Pause.",
    ],
    "fr": [
        "Bonjour, je suis une tête qui parle.",
        "Le petit bateau part du port ce matin.",
        "Ma mère prépare une tarte aux pommes.",
        "Pourquoi le chat dort-il sur le piano?",
        "Nous allons au marché pour acheter du pain.",
        "Il fait beau, alors promenons-nous dans le bois.",
        "Mon frère joue du violon depuis dix ans.",
        "Le bébé boit son biberon sans bruit.",
        "Les enfants chantent une chanson joyeuse.",
        "Je voudrais un verre d'eau, s'il vous plaît.",
        "La lune brille au-dessus de la mer calme.",
        "Paul mange des moules et des frites à midi.",
    ],
    "es": [
        "Hola, soy una cabeza que habla.",
        "Mi madre prepara pan por la mañana.",
        "El perro bebe agua bajo el puente.",
        "Vamos a la playa para ver el mar.",
        "¿Puedes pasarme el papel, por favor?",
        "Mañana compraremos manzanas en el mercado.",
        "La bicicleta azul está en el patio.",
        "Pablo pinta paisajes bonitos en primavera.",
        "El tren sale de la estación a las nueve.",
        "Los niños juegan al fútbol en la calle.",
        "Me gusta mucho la música de guitarra.",
        "Hace frío, pero el cielo está despejado.",
    ],
    "it": [
        "Buongiorno, sono una testa che parla.",
        "Mia madre prepara la pasta con il pomodoro.",
        "Il bambino beve il latte prima di dormire.",
        "Andiamo al mare in macchina domani mattina.",
        "Per favore, passami il pane e il burro.",
        "Il gatto dorme sopra la poltrona blu.",
        "Paolo parla piano perché il papà riposa.",
        "La piazza è piena di persone e piccioni.",
        "Vorrei un bicchiere d'acqua, grazie.",
        "Le montagne sono bianche di neve.",
        "Il treno parte alle nove e mezza.",
        "Mangiamo una pizza margherita stasera.",
    ],
    "nl": [
        "Goedemorgen, ik ben een pratend hoofd.",
        "Mijn moeder bakt brood in de ochtend.",
        "De boot vaart langzaam over het water.",
        "Wil je mij het papier even geven?",
        "Wij fietsen samen naar de markt.",
        "Het regent al de hele week in Amsterdam.",
        "Piet eet een appel met pindakaas.",
        "De kinderen spelen buiten in het park.",
        "Vandaag is het mooi weer om te wandelen.",
        "Mama maakt soep met groenten en bonen.",
    ],
    "pl": [
        "Dzień dobry, jestem mówiącą głową.",
        "Mama piecze pyszny chleb w poniedziałek.",
        "Pies pije wodę z miski przy bramie.",
        "Proszę podać mi papier i pióro.",
        "Jutro pojedziemy pociągiem nad morze.",
        "Moja babcia mieszka w małym domu.",
        "Dzieci bawią się w parku po szkole.",
        "Pada deszcz, więc zostaniemy w domu.",
        "Paweł pisze piękny wiersz o miłości.",
        "Kot śpi na miękkiej poduszce.",
    ],
    "sv": [
        "God morgon, jag är ett talande huvud.",
        "Min mamma bakar bröd på morgonen.",
        "Båten seglar långsamt över sjön.",
        "Kan du ge mig pappret, tack?",
        "Barnen leker i parken efter skolan.",
        "Vi åker buss till stan i morgon.",
        "Pappa plockar blåbär i skogen.",
        "Det snöar mycket i norr på vintern.",
    ],
    "cs": [
        "Dobré ráno, jsem mluvící hlava.",
        "Moje maminka peče chleba každé pondělí.",
        "Pes pije vodu z misky u plotu.",
        "Podej mi prosím papír a pero.",
        "Zítra pojedeme vlakem do Prahy.",
        "Děti si hrají v parku po škole.",
        "Babička vaří polévku z brambor.",
        "Venku prší, takže zůstaneme doma.",
    ],
    # fi and ru: festival voices only (festival.py); espeak-ng's data does not use them (not in VOICES).
    "fi": [
        "Hyvää huomenta, minä olen puhuva pää.",
        "Äiti leipoo pullaa joka maanantai.",
        "Koira juo vettä kupista aidan vieressä.",
        "Anna minulle paperi ja kynä, kiitos.",
        "Huomenna menemme junalla Helsinkiin.",
        "Lapset leikkivät puistossa koulun jälkeen.",
        "Mummo keittää perunakeittoa.",
        "Ulkona sataa, joten jäämme kotiin.",
        "Pekka maalaa punaisen veneen.",
        "Me näemme meren ja pilvet.",
    ],
    "ru": [
        "Доброе утро, я говорящая голова.",
        "Мама печёт пироги каждый понедельник.",
        "Собака пьёт воду из миски у забора.",
        "Передай мне, пожалуйста, бумагу и ручку.",
        "Завтра мы поедем на поезде в Москву.",
        "Дети играют в парке после школы.",
        "Бабушка варит борщ и компот.",
        "На улице дождь, поэтому мы остаёмся дома.",
        "Папа купил большую белую лодку.",
        "Мы видим море и облака.",
    ],
    "hi": [
        "नमस्ते, मैं एक बोलने वाला सिर हूँ।",
        "माँ हर सोमवार को रोटी बनाती है।",
        "कुत्ता घर के पास कटोरे से पानी पीता है।",
        "कृपया मुझे पत्र और कलम दीजिए।",
        "कल हम बस से दिल्ली जाएँगे।",
        "बच्चे स्कूल के बाद पार्क में खेलते हैं।",
        "दादी मीठी खीर और पूरी बना रही हैं।",
        "बाहर बारिश हो रही है, इसलिए हम घर पर हैं।",
        "पापा ने एक लाल नाव ली।",
        "हम समुद्र और बादल देखते हैं।",
    ],
    "ca": [
        "Bon dia, sóc un cap que parla.",
        "La mare fa pa de pessic cada dilluns.",
        "El gos beu aigua d'un bol prop de la porta.",
        "Em pots passar el paper i la ploma, si us plau?",
        "Demà anirem amb tren a Barcelona.",
        "Els nens juguen al parc després de l'escola.",
        "L'àvia prepara una sopa de peix i patates.",
        "Plou molt, així que ens quedem a casa.",
        "El pare ha comprat una barca blanca i blava.",
        "Mirem el mar, les muntanyes i els núvols.",
    ],
    "pt": [
        "Bom dia, eu sou uma cabeça que fala.",
        "A minha mãe faz pão de manhã.",
        "O barco parte do porto ao meio-dia.",
        "Por favor, passa-me o papel e a caneta.",
        "Amanhã vamos à praia ver o mar.",
        "O menino bebe leite antes de dormir.",
        "Paulo pinta paisagens bonitas na primavera.",
        "O gato dorme em cima da cadeira azul.",
        "Está a chover, por isso ficamos em casa.",
        "Gosto muito de música brasileira.",
        "O comboio parte às nove e meia.",
        "Maria comprou maçãs e bananas no mercado.",
    ],
}

# Extra words for random sequences (sentence words are added to these).
WORDS = {
    "en": "apple baby bubble puppy mumble paper mop bomb map pump shop ship fish five very vivid thumb three "
          "this that mother father table ladder garden cookie quick kick goat judge church sugar measure "
          "zoo buzz music yes yellow wet water window rope road happy hope open ocean moon blue boot foot "
          "book put about mouth house eye high time tight day say name game see tree bee big bit pin ten "
          "sun summer button bottle little middle people purple number member maybe problem simple",
    "de": "Apfel Papier Mama Papa Baum Blume Wasser Wetter Vogel Fisch Schiff Buch Bach ich auch Milch "
          "zwei drei vier fünf Zucker Katze Hund Haus Maus müde schön über Bruder Mutter Pferd Pfeffer "
          "Mittwoch Sonntag Sonne Mond Stern rot grün gelb blau weiß schwarz groß klein immer nimmer",
    "fr": "papa maman pomme poire bonbon beau bleu vin pain main chien chat oiseau eau feu jeu rue roue "
          "lune soleil montagne fromage beurre petit grand rouge vert jaune blanc noir bouche boule "
          "mouton poisson fille garçon voiture vélo musique jupe genou huit neuf",
    "es": "papá mamá perro gato casa mesa silla agua fuego tierra cielo sol luna mano boca pie pelo "
          "rojo verde azul blanco negro grande pequeño bueno malo uno dos tres cuatro cinco chico "
          "chocolate zapato jardín ventana puerta libro pluma barco playa ciudad",
    "it": "papà mamma cane gatto casa tavolo sedia acqua fuoco terra cielo sole luna mano bocca piede "
          "rosso verde azzurro bianco nero grande piccolo buono uno due tre quattro cinque gnocchi "
          "giorno sera notte mela pera pesca zucchero bicicletta finestra porta libro barca",
    "nl": "appel peer boom bloem water vuur aarde lucht zon maan hand mond voet hoofd rood groen blauw "
          "wit zwart groot klein goed slecht een twee drie vier vijf huis deur raam boek fiets schip",
    "pl": "jabłko gruszka drzewo kwiat woda ogień ziemia niebo słońce księżyc ręka usta noga głowa "
          "czerwony zielony niebieski biały czarny duży mały dobry jeden dwa trzy cztery pięć dom okno",
    "sv": "äpple päron träd blomma vatten eld jord himmel sol måne hand mun fot huvud röd grön blå vit "
          "svart stor liten bra ett två tre fyra fem hus dörr fönster bok cykel båt",
    "cs": "jablko hruška strom květina voda oheň země nebe slunce měsíc ruka ústa noha hlava červený "
          "zelený modrý bílý černý velký malý dobrý jedna dva tři čtyři pět dům okno kniha",
    "fi": "omena päärynä puu kukka vesi tuli maa taivas aurinko kuu käsi suu jalka pää punainen vihreä sininen "
          "valkoinen musta iso pieni hyvä yksi kaksi kolme neljä viisi talo ovi ikkuna kirja pallo mamma pappa",
    "ru": "яблоко груша дерево цветок вода огонь земля небо солнце луна рука рот нога голова красный зелёный "
          "синий белый чёрный большой маленький хороший один два три четыре пять дом дверь окно книга мяч",
    "hi": "पानी फूल आग धरती आसमान सूरज चाँद हाथ मुँह पैर सिर लाल हरा नीला काला छोटा अच्छा "
          "एक दो तीन चार पाँच घर बादल नदी किताब गेंद मामा पापा बाबा बम्बई",
    "ca": "poma pera arbre flor aigua foc terra cel sol lluna mà boca peu cap vermell verd blau blanc negre "
          "gran petit bo u dos tres quatre cinc casa porta finestra llibre vaixell pipa mama papa bombolla",
    "pt": "maçã pera árvore flor água fogo terra céu sol lua mão boca pé cabeça vermelho verde azul "
          "branco preto grande pequeno bom um dois três quatro cinco casa porta janela livro barco",
}


def words(lang: str) -> list[str]:
    extra = WORDS[lang].split()
    from_sentences = [w.strip(".,!?¿¡;:\"'") for s in SENTENCES[lang] for w in s.split()]
    return sorted({w for w in extra + from_sentences if w})


def random_sequence(lang: str, rng: np.random.Generator) -> str:
    """3-12 random words, sometimes with commas/full stops in between (pauses) and a final ? or !."""
    vocab = words(lang)
    n = int(rng.integers(3, 13))
    out = []
    for i in range(n):
        w = vocab[int(rng.integers(len(vocab)))]
        if i < n - 1 and rng.random() < 0.12:
            w += str(rng.choice([",", ".", ";"]))
        out.append(w)
    return " ".join(out) + str(rng.choice([".", ".", "?", "!"]))


def texts(lang: str, rng: np.random.Generator, n: int, sentence_share: float = 0.5) -> list[str]:
    """n texts: about `sentence_share` of them the written sentences (sometimes two joined), the rest random words."""
    out = []
    sents = SENTENCES[lang]
    for _ in range(n):
        if rng.random() < sentence_share:
            s = sents[int(rng.integers(len(sents)))]
            if rng.random() < 0.3:
                s += " " + sents[int(rng.integers(len(sents)))]
            out.append(s)
        else:
            out.append(random_sequence(lang, rng))
    return out
